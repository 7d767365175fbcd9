package profile

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// FuzzReplay: whatever prefix the first attempt read, in whatever chunk
// sizes, a rewound attempt reads exactly the body, and Rewind refuses only
// bodies over MaxReplayBody.
func FuzzReplay(f *testing.F) {
	f.Add(uint32(100), uint16(10), uint8(3), uint8(1))
	f.Add(uint32(MaxReplayBody), uint16(65535), uint8(200), uint8(2))
	f.Add(uint32(MaxReplayBody+1), uint16(7), uint8(1), uint8(0))
	f.Fuzz(func(t *testing.T, size uint32, firstRead uint16, chunk uint8, rewinds uint8) {
		size %= 2 * MaxReplayBody
		body := bytes.Repeat([]byte("abcdefghij"), int(size)/10+1)[:size]
		r := NewReplay(iotest.HalfReader(bytes.NewReader(body)))
		defer r.Release()
		buf := make([]byte, int(chunk)+1)
		read := 0
		a := r.Body()
		for read < int(firstRead) {
			n, err := a.Read(buf)
			read += n
			if err != nil {
				break
			}
		}
		for i := 0; i < int(rewinds%4); i++ {
			if !r.Rewind() {
				if size <= MaxReplayBody && read <= MaxReplayBody {
					t.Fatalf("size %d: rewind refused after %d bytes", size, read)
				}
				return
			}
			got, err := io.ReadAll(r.Body())
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("size %d: replay read %d bytes (%v)", size, len(got), err)
			}
			read = len(got)
		}
	})
}
