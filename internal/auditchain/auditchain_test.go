package auditchain

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nitronet/nitronet/internal/errs"
)

// t0 returns the time of the first test entry.
func t0() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }

// chain returns n valid entries.
func chain(n int) []Entry {
	var out []Entry
	var prev *Entry
	for i := range n {
		e := Append(prev, Entry{
			At:      t0().Add(time.Duration(i) * time.Minute),
			Actor:   "staff-1",
			Role:    "support",
			Action:  "account.view",
			Subject: fmt.Sprintf("acc-%d", i),
			Detail:  "ticket 42",
		})
		out = append(out, e)
		prev = &out[len(out)-1]
	}
	return out
}

// rehash recomputes hashes and links from index i on, as an attacker
// with write access to the table would.
func rehash(es []Entry, from int) {
	for i := from; i < len(es); i++ {
		if i > 0 {
			es[i].PrevHash = bytes.Clone(es[i-1].Hash)
		}
		es[i].Hash = es[i].ComputeHash()
	}
}

func TestAppend(t *testing.T) {
	first := Append(nil, Entry{At: time.Date(2026, 3, 1, 13, 0, 0, 999, time.FixedZone("X", 3600)), Actor: "s", Role: "r", Action: "a", Seq: 99, PrevHash: []byte("junk"), Hash: []byte("junk")})
	if first.Seq != 1 || first.PrevHash != nil {
		t.Errorf("first entry Seq, PrevHash = %d, %x; want 1, nil", first.Seq, first.PrevHash)
	}
	if want := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC); !first.At.Equal(want) || first.At.Location() != time.UTC {
		t.Errorf("At = %v, want %v in UTC", first.At, want)
	}
	if !bytes.Equal(first.Hash, first.ComputeHash()) || len(first.Hash) != HashSize {
		t.Errorf("Hash = %x, want ComputeHash of %d bytes", first.Hash, HashSize)
	}
	second := Append(&first, Entry{At: t0(), Actor: "s", Role: "r", Action: "b"})
	if second.Seq != 2 || !bytes.Equal(second.PrevHash, first.Hash) {
		t.Errorf("second entry Seq, PrevHash = %d, %x; want 2, %x", second.Seq, second.PrevHash, first.Hash)
	}
	first.Hash[0] ^= 1
	if bytes.Equal(second.PrevHash, first.Hash) {
		t.Errorf("PrevHash aliases prev.Hash, want a copy")
	}
}

func TestComputeHashStableAcrossStorage(t *testing.T) {
	e := chain(1)[0]
	// Storage returns the time in another location, without monotonic
	// reading; the hash must not change.
	stored := e
	stored.At = time.Unix(e.At.Unix(), 0).In(time.FixedZone("Y", -7200))
	if !bytes.Equal(stored.ComputeHash(), e.Hash) {
		t.Errorf("hash changed after storage round trip")
	}
	empty := e
	empty.PrevHash = []byte{}
	if !bytes.Equal(empty.ComputeHash(), e.ComputeHash()) {
		t.Errorf("nil and empty PrevHash hash differently, want alike")
	}
}

func TestComputeHashCoversEveryField(t *testing.T) {
	base := chain(2)[1]
	mods := map[string]func(*Entry){
		"Seq":      func(e *Entry) { e.Seq++ },
		"At":       func(e *Entry) { e.At = e.At.Add(time.Second) },
		"At nanos": func(e *Entry) { e.At = e.At.Add(time.Nanosecond) },
		"Actor":    func(e *Entry) { e.Actor += "x" },
		"Role":     func(e *Entry) { e.Role += "x" },
		"Action":   func(e *Entry) { e.Action += "x" },
		"Subject":  func(e *Entry) { e.Subject += "x" },
		"Detail":   func(e *Entry) { e.Detail += "x" },
		"PrevHash": func(e *Entry) { e.PrevHash = append(bytes.Clone(e.PrevHash), 0) },
		// Moving bytes between adjacent fields must change the hash.
		"boundary": func(e *Entry) { e.Actor, e.Role = e.Actor+e.Role[:1], e.Role[1:] },
	}
	for name, mod := range mods {
		t.Run(name, func(t *testing.T) {
			e := base
			mod(&e)
			if bytes.Equal(e.ComputeHash(), base.Hash) {
				t.Errorf("changing %s left the hash unchanged", name)
			}
		})
	}
	t.Run("Hash excluded", func(t *testing.T) {
		e := base
		e.Hash = []byte("other")
		if !bytes.Equal(e.ComputeHash(), base.Hash) {
			t.Errorf("Hash field changed ComputeHash, want it excluded")
		}
	})
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func([]Entry) []Entry
		wantSeq int64
		wantIdx int
		want    Kind
	}{
		{"intact", func(es []Entry) []Entry { return es }, 0, 0, ""},
		{"empty", func([]Entry) []Entry { return nil }, 0, 0, ""},
		{"field changed", func(es []Entry) []Entry { es[2].Subject = "acc-other"; return es }, 3, 2, KindHash},
		{"time changed", func(es []Entry) []Entry { es[3].At = es[3].At.Add(time.Hour); return es }, 4, 3, KindHash},
		{"hash changed", func(es []Entry) []Entry { es[1].Hash[0] ^= 1; return es }, 2, 1, KindHash},
		{"hash removed", func(es []Entry) []Entry { es[1].Hash = nil; return es }, 2, 1, KindHash},
		{"field changed and rehashed", func(es []Entry) []Entry {
			es[2].Detail = "nothing to see"
			es[2].Hash = es[2].ComputeHash()
			return es
		}, 4, 3, KindLink},
		{"middle deleted", func(es []Entry) []Entry { return slices.Delete(es, 2, 3) }, 4, 2, KindSeq},
		{"first deleted", func(es []Entry) []Entry { return es[1:] }, 2, 0, KindSeq},
		{"last deleted", func(es []Entry) []Entry { return es[:len(es)-1] }, 0, 0, ""}, // only a checkpoint catches this
		{"middle deleted and renumbered", func(es []Entry) []Entry {
			es = slices.Delete(es, 2, 3)
			for i := 2; i < len(es); i++ {
				es[i].Seq--
			}
			return es
		}, 3, 2, KindHash},
		{"middle deleted renumbered rehashed from gap", func(es []Entry) []Entry {
			es = slices.Delete(es, 2, 3)
			es[2].Seq--
			es[2].Hash = es[2].ComputeHash()
			return es
		}, 3, 2, KindLink},
		{"swapped", func(es []Entry) []Entry { es[2], es[3] = es[3], es[2]; return es }, 4, 2, KindSeq},
		{"swapped seqs too", func(es []Entry) []Entry {
			es[2], es[3] = es[3], es[2]
			es[2].Seq, es[3].Seq = es[3].Seq, es[2].Seq
			return es
		}, 3, 2, KindHash},
		{"inserted with new seq", func(es []Entry) []Entry {
			forged := Append(&es[1], Entry{At: t0(), Actor: "staff-9", Role: "admin", Action: "account.view"})
			return slices.Insert(es, 2, forged)
		}, 3, 3, KindSeq},
		{"inserted and duplicated seq", func(es []Entry) []Entry {
			return slices.Insert(es, 2, es[1])
		}, 2, 2, KindSeq},
		{"first entry with prev hash", func(es []Entry) []Entry {
			es[0].PrevHash = make([]byte, HashSize)
			es[0].Hash = es[0].ComputeHash()
			return es
		}, 1, 0, KindLink},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := tt.tamper(chain(6))
			err := Verify(es)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			var be *BreakError
			if !errors.As(err, &be) {
				t.Fatalf("Verify = %v, want *BreakError", err)
			}
			if be.Kind != tt.want || be.Seq != tt.wantSeq || be.Index != tt.wantIdx {
				t.Errorf("Verify break = kind %s seq %d index %d, want kind %s seq %d index %d (%v)",
					be.Kind, be.Seq, be.Index, tt.want, tt.wantSeq, tt.wantIdx, err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("seq %d", tt.wantSeq)) {
				t.Errorf("error %q does not name seq %d", err, tt.wantSeq)
			}
		})
	}
}

func TestVerifyFrom(t *testing.T) {
	es := chain(6)
	anchor := es[2].Hash
	tail := es[3:]
	tests := []struct {
		name   string
		anchor []byte
		es     []Entry
		want   Kind
	}{
		{"pruned chain", anchor, tail, ""},
		{"empty tail", anchor, nil, ""},
		{"nil anchor is genesis", nil, es, ""},
		{"nil anchor with tail", nil, tail, KindSeq},
		{"wrong anchor", es[1].Hash, tail, KindLink},
		{"first after anchor deleted", anchor, es[4:], KindLink},
		{"seq 1 after anchor", es[0].Hash, func() []Entry {
			c := slices.Clone(es[1:])
			c[0].Seq = 1
			rehash(c[:1], 0)
			return c
		}(), KindSeq},
		{"tampered tail", anchor, func() []Entry {
			c := slices.Clone(tail)
			c[1].Action = "x"
			return c
		}(), KindHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyFrom(tt.anchor, tt.es)
			var be *BreakError
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("VerifyFrom = %v, want nil", err)
			case tt.want != "" && !errors.As(err, &be):
				t.Errorf("VerifyFrom = %v, want *BreakError of kind %s", err, tt.want)
			case tt.want != "" && be.Kind != tt.want:
				t.Errorf("VerifyFrom kind = %s, want %s (%v)", be.Kind, tt.want, err)
			}
		})
	}
}

func TestCheckpoint(t *testing.T) {
	es := chain(5)
	cp, ok := Head(es[:3])
	if !ok || cp.Seq != 3 || !bytes.Equal(cp.Hash, es[2].Hash) {
		t.Fatalf("Head = %+v, %v; want seq 3 and its hash", cp, ok)
	}
	if _, ok := Head(nil); ok {
		t.Errorf("Head(nil) ok = true, want false")
	}

	// A full rewrite with recomputed hashes passes Verify; only the
	// checkpoint catches it.
	rewritten := slices.Clone(es)
	for i := range rewritten {
		rewritten[i].PrevHash = bytes.Clone(rewritten[i].PrevHash)
	}
	rewritten[1].Subject = "acc-hidden"
	rehash(rewritten, 1)
	if err := Verify(rewritten); err != nil {
		t.Fatalf("Verify(rewritten) = %v, want nil (the chain alone cannot catch this)", err)
	}

	tests := []struct {
		name    string
		es      []Entry
		wantErr bool
		wantIdx int
	}{
		{"intact", es, false, 0},
		{"rewritten", rewritten, true, 2},
		{"truncated before checkpoint", es[:2], true, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyCheckpoint(tt.es, cp)
			if !tt.wantErr {
				if err != nil {
					t.Errorf("VerifyCheckpoint = %v, want nil", err)
				}
				return
			}
			var be *BreakError
			if !errors.As(err, &be) || be.Kind != KindCheckpoint || be.Index != tt.wantIdx || be.Seq != 3 {
				t.Errorf("VerifyCheckpoint = %v, want checkpoint break at index %d seq 3", err, tt.wantIdx)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := Entry{At: t0(), Actor: "staff-1", Role: "support", Action: "account.view", Subject: "acc-1", Detail: "ticket 42"}
	tests := []struct {
		name   string
		modify func(*Entry)
		valid  bool
	}{
		{"valid", func(*Entry) {}, true},
		{"no subject", func(e *Entry) { e.Subject = "" }, true},
		{"no time", func(e *Entry) { e.At = time.Time{} }, false},
		{"no actor", func(e *Entry) { e.Actor = " " }, false},
		{"no role", func(e *Entry) { e.Role = "" }, false},
		{"no action", func(e *Entry) { e.Action = "" }, false},
		{"email subject", func(e *Entry) { e.Subject = "alice@example.org" }, false},
		{"email actor", func(e *Entry) { e.Actor = "bob@example.org" }, false},
		{"long detail", func(e *Entry) { e.Detail = strings.Repeat("d", MaxFieldLen+1) }, false},
		{"bad utf8", func(e *Entry) { e.Detail = "\xff" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ok
			tt.modify(&e)
			err := e.Validate()
			if tt.valid && err != nil {
				t.Errorf("Validate() = %v, want nil", err)
			}
			if !tt.valid && errs.CodeOf(err) != errs.Invalid {
				t.Errorf("Validate() = %v, want code %q", err, errs.Invalid)
			}
		})
	}
}

// sameHashedFields reports whether a and b agree on every hashed field.
func sameHashedFields(a, b Entry) bool {
	return a.Seq == b.Seq && a.At.Equal(b.At) && a.Actor == b.Actor && a.Role == b.Role &&
		a.Action == b.Action && a.Subject == b.Subject && a.Detail == b.Detail &&
		bytes.Equal(a.PrevHash, b.PrevHash)
}

func FuzzComputeHashInjective(f *testing.F) {
	f.Add(int64(1), int64(0), "a", "b", "c", "d", "e", []byte{},
		int64(1), int64(0), "ab", "", "c", "d", "e", []byte{})
	f.Add(int64(1), int64(5), "s", "r", "a", "acc", "", []byte{1},
		int64(1), int64(5), "s", "r", "a", "acc\x00", "", []byte{})
	f.Add(int64(-1), int64(1e9), "", "", "", "", "x", []byte(nil),
		int64(-1), int64(1e9), "", "", "", "x", "", []byte(nil))
	f.Fuzz(func(t *testing.T,
		seq1, ns1 int64, ac1, ro1, an1, su1, de1 string, ph1 []byte,
		seq2, ns2 int64, ac2, ro2, an2, su2, de2 string, ph2 []byte) {
		a := Entry{Seq: seq1, At: time.Unix(0, ns1), Actor: ac1, Role: ro1, Action: an1, Subject: su1, Detail: de1, PrevHash: ph1}
		b := Entry{Seq: seq2, At: time.Unix(0, ns2), Actor: ac2, Role: ro2, Action: an2, Subject: su2, Detail: de2, PrevHash: ph2}
		ha, hb := a.ComputeHash(), b.ComputeHash()
		if same := sameHashedFields(a, b); same != bytes.Equal(ha, hb) {
			t.Fatalf("entries equal=%v but hashes equal=%v:\n%+v\n%+v", same, !same, a, b)
		}
		// A single valid entry verifies; any change to a field breaks it.
		e := Append(nil, a)
		if err := Verify([]Entry{e}); err != nil {
			t.Fatalf("Verify(Append(nil, e)) = %v", err)
		}
	})
}

func TestCheckpointText(t *testing.T) {
	es := chain(3)
	cp, _ := Head(es)
	text := cp.String()
	if want := fmt.Sprintf("3:%x", es[2].Hash); text != want {
		t.Fatalf("String = %q, want %q", text, want)
	}
	got, err := ParseCheckpoint("  " + strings.ToUpper(text) + "\n")
	if err != nil || got.Seq != 3 || !bytes.Equal(got.Hash, es[2].Hash) {
		t.Fatalf("ParseCheckpoint(String) = %+v, %v, want %+v", got, err, cp)
	}
	if got, err := ParseCheckpoint("0:"); err != nil || got.Seq != 0 || got.Hash != nil || (Checkpoint{}).String() != "0:" {
		t.Fatalf("empty chain head: got %+v, %v and %q, want the zero Checkpoint and \"0:\"", got, err, Checkpoint{}.String())
	}
	hash := fmt.Sprintf("%x", es[2].Hash)
	for _, bad := range []string{
		"", "3", hash, ":" + hash, "-3:" + hash, "+3:" + hash, "03:" + hash, "3.0:" + hash, "x:" + hash,
		"3:" + hash[:62], "3:" + hash + "00", "3:" + hash[:63] + "g", "3:", "0:" + hash, "3:" + hash + ":1",
		"99999999999999999999:" + hash,
	} {
		if _, err := ParseCheckpoint(bad); errs.CodeOf(err) != errs.Invalid || errs.FieldOf(err) != "head" {
			t.Errorf("ParseCheckpoint(%q) = %v (field %q), want Invalid about head", bad, err, errs.FieldOf(err))
		}
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	cp, _ := Head(chain(2))
	f.Add(cp.String())
	f.Add("0:")
	f.Add("1:zz")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCheckpoint(s)
		if err != nil {
			if errs.CodeOf(err) != errs.Invalid {
				t.Fatalf("ParseCheckpoint(%q) = %v, want Invalid", s, err)
			}
			return
		}
		// What parses prints back to the same checkpoint.
		again, err := ParseCheckpoint(c.String())
		if err != nil || again.Seq != c.Seq || !bytes.Equal(again.Hash, c.Hash) {
			t.Fatalf("round trip of %q: got %+v, %v, want %+v", s, again, err, c)
		}
		if c.Seq < 0 || (c.Seq == 0) != (len(c.Hash) == 0) || (c.Seq > 0 && len(c.Hash) != HashSize) {
			t.Fatalf("ParseCheckpoint(%q) = %+v: not a valid checkpoint", s, c)
		}
	})
}
