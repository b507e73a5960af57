package udptcp

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	var stream []byte
	want := [][]byte{{1}, bytes.Repeat([]byte{2}, 148), bytes.Repeat([]byte{3}, MaxPayload)}
	for _, p := range want {
		var err error
		if stream, err = AppendFrame(stream, p); err != nil {
			t.Fatalf("AppendFrame(%d bytes): %v", len(p), err)
		}
	}
	if got, wantLen := len(stream), 3*HeaderSize+1+148+MaxPayload; got != wantLen {
		t.Fatalf("stream length: got %d, want %d", got, wantLen)
	}
	if !bytes.Equal(stream[:3], []byte{0, 1, 1}) {
		t.Fatalf("first frame: got % x, want 00 01 01 (big-endian length, payload)", stream[:3])
	}
	r := NewReader(bytes.NewReader(stream), 0)
	buf := make([]byte, MaxPayload)
	for i, p := range want {
		n, err := r.ReadFrame(buf)
		if err != nil || !bytes.Equal(buf[:n], p) {
			t.Fatalf("frame %d: got %d bytes, %v; want %d bytes", i, n, err, len(p))
		}
	}
	if _, err := r.ReadFrame(buf); err != io.EOF {
		t.Fatalf("after the last frame: got %v, want io.EOF", err)
	}
}

func TestAppendFrameRefuses(t *testing.T) {
	for _, n := range []int{0, MaxPayload + 1} {
		out, err := AppendFrame([]byte{9}, make([]byte, n))
		if err == nil || !bytes.Equal(out, []byte{9}) {
			t.Errorf("AppendFrame(%d bytes): got %x, %v; want dst unchanged and an error", n, out, err)
		}
	}
}

func TestReadFrameErrors(t *testing.T) {
	tests := []struct {
		name   string
		stream []byte
		buf    int
		want   error
	}{
		{"empty frame", []byte{0, 0, 1}, 16, ErrEmptyFrame},
		{"too large for the buffer", []byte{0, 17}, 16, ErrFrameTooLarge},
		{"ends in the header", []byte{0}, 16, io.ErrUnexpectedEOF},
		{"ends in the payload", []byte{0, 4, 1, 2}, 16, io.ErrUnexpectedEOF},
		{"ends right after a header", []byte{0, 4}, 16, io.ErrUnexpectedEOF},
		{"nothing", nil, 16, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(tt.stream), 0).ReadFrame(make([]byte, tt.buf))
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzReader: ReadFrame never panics, never returns more than the buffer
// holds, and what it reads re-encodes to the bytes it consumed.
func FuzzReader(f *testing.F) {
	f.Add([]byte{0, 1, 1, 0, 2, 1, 2}, 8)
	f.Add([]byte{0, 0}, 8)
	f.Add([]byte{0xff, 0xff, 1}, 1)
	f.Add([]byte{}, 0)
	f.Fuzz(func(t *testing.T, stream []byte, size int) {
		if size < 0 || size > MaxPayload {
			return
		}
		r := NewReader(bytes.NewReader(stream), 0)
		buf := make([]byte, size)
		var again []byte
		for {
			n, err := r.ReadFrame(buf)
			if err != nil {
				if !bytes.HasPrefix(stream, again) {
					t.Fatalf("frames read so far re-encode to %x, not a prefix of %x", again, stream)
				}
				return
			}
			if n < 1 || n > size {
				t.Fatalf("ReadFrame returned %d bytes into a buffer of %d", n, size)
			}
			if again, err = AppendFrame(again, buf[:n]); err != nil {
				t.Fatal(err)
			}
		}
	})
}
