package wgconf

import (
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics and that any Config it returns
// validates and survives Render then Parse unchanged.
func FuzzParse(f *testing.F) {
	c := sampleConfig(f)
	f.Add(c.Render())
	c.Interface.PrivateKey = nil
	f.Add(c.Render())
	f.Add("[Interface]\nAddress = 100.64.0.2\n[Peer]\nPublicKey = " + c.Peers[0].PublicKey.String() + "\nEndpoint = [fd00::1]:1\nAllowedIPs = 10.0.0.1/8\nPersistentKeepalive = off\n")
	f.Add("[interface]\r\ndns=1.1.1.1 # x\r\n")
	f.Add("[Interface]\n[Peer]\nPublicKey = x\n")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Validate of a parsed config: %v", err)
		}
		r := c.Render()
		c2, err := Parse(r)
		if err != nil {
			t.Fatalf("Parse(Render(c)): %v\n%s", err, r)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip:\ngot  %+v\nwant %+v", c2, c)
		}
	})
}
