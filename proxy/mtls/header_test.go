package mtls_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/weftmesh/weft/proxy/mtls"
	"github.com/weftmesh/weft/proxy/target"
)

func TestHeaderRoundTrip(t *testing.T) {
	for _, h := range []mtls.Header{
		{Port: 1, Protocol: target.Unknown},
		{Port: 80, Protocol: target.HTTP1},
		{Port: 8080, Protocol: target.HTTP2},
		{Port: 65535, Protocol: target.Opaque},
	} {
		b := mtls.AppendHeader(nil, h)
		if len(b) != mtls.HeaderLen {
			t.Fatalf("len %d", len(b))
		}
		got, n, err := mtls.ParseHeader(append(b, "trailing app bytes"...))
		if err != nil || got != h || n != mtls.HeaderLen {
			t.Fatalf("parse %+v: %+v %d %v", h, got, n, err)
		}
		// ReadHeader stops exactly at the end of the header.
		var buf [mtls.MaxHeaderLen]byte
		r := bytes.NewReader(append(b, "rest"...))
		got, err = mtls.ReadHeader(r, &buf)
		if err != nil || got != h {
			t.Fatalf("read %+v: %+v %v", h, got, err)
		}
		rest, _ := io.ReadAll(r)
		if string(rest) != "rest" {
			t.Fatalf("ReadHeader consumed app bytes: rest %q", rest)
		}
		// Every strict prefix is short, never wrong.
		for i := 0; i < len(b); i++ {
			if _, _, err := mtls.ParseHeader(b[:i]); err != mtls.ErrShortHeader {
				t.Fatalf("prefix %d: %v", i, err)
			}
		}
	}
}

func TestHeaderExtensionsSkipped(t *testing.T) {
	b := []byte{'w', 'f', 't', 1, 3 + 2 + 3 + 2, 0x1f, 0x90, 2, 9, 3, 'a', 'b', 'c', 7, 0}
	h, n, err := mtls.ParseHeader(b)
	if err != nil || n != len(b) || h != (mtls.Header{Port: 8080, Protocol: target.HTTP2}) {
		t.Fatalf("%+v %d %v", h, n, err)
	}
	var buf [mtls.MaxHeaderLen]byte
	if h2, err := mtls.ReadHeader(bytes.NewReader(b), &buf); err != nil || h2 != h {
		t.Fatalf("read: %+v %v", h2, err)
	}
}

func TestHeaderErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"plain http", []byte("GET / HTTP/1.1\r\n"), mtls.ErrHeaderMagic},
		{"bad magic late", []byte("wfX"), mtls.ErrHeaderMagic},
		{"version 2", []byte{'w', 'f', 't', 2, 3, 0, 80, 1}, mtls.ErrHeaderVersion},
		{"body too short", []byte{'w', 'f', 't', 1, 2, 0, 80}, mtls.ErrHeaderInvalid},
		{"port zero", []byte{'w', 'f', 't', 1, 3, 0, 0, 1}, mtls.ErrHeaderInvalid},
		{"unknown protocol", []byte{'w', 'f', 't', 1, 3, 0, 80, 4}, mtls.ErrHeaderInvalid},
		{"truncated extension", []byte{'w', 'f', 't', 1, 5, 0, 80, 1, 9, 5}, mtls.ErrHeaderInvalid},
		{"dangling extension type", []byte{'w', 'f', 't', 1, 4, 0, 80, 1, 9}, mtls.ErrHeaderInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := mtls.ParseHeader(tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("parse: %v, want %v", err, tc.want)
			}
			var buf [mtls.MaxHeaderLen]byte
			if _, err := mtls.ReadHeader(bytes.NewReader(tc.b), &buf); err == nil {
				t.Fatal("read accepted it")
			}
		})
	}
	var buf [mtls.MaxHeaderLen]byte
	if _, err := mtls.ReadHeader(bytes.NewReader([]byte{'w', 'f', 't', 1, 9, 0}), &buf); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated stream: %v", err)
	}
}

func TestHeaderZeroAllocs(t *testing.T) {
	var dst [mtls.HeaderLen]byte
	var buf [mtls.MaxHeaderLen]byte
	enc := mtls.AppendHeader(nil, mtls.Header{Port: 8080, Protocol: target.HTTP1})
	r := bytes.NewReader(enc)
	allocs := testing.AllocsPerRun(100, func() {
		b := mtls.AppendHeader(dst[:0], mtls.Header{Port: 8080, Protocol: target.HTTP1})
		if _, _, err := mtls.ParseHeader(b); err != nil {
			t.Fatal(err)
		}
		r.Reset(enc)
		if _, err := mtls.ReadHeader(r, &buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per header round trip, want 0", allocs)
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add(mtls.AppendHeader(nil, mtls.Header{Port: 8080, Protocol: target.HTTP2}))
	f.Add([]byte{'w', 'f', 't', 1, 10, 0x1f, 0x90, 2, 9, 3, 'a', 'b', 'c', 7, 0})
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte{'w', 'f', 't', 1, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := mtls.ParseHeader(b)
		var buf [mtls.MaxHeaderLen]byte
		rh, rerr := mtls.ReadHeader(bytes.NewReader(b), &buf)
		if err == nil {
			if n < mtls.HeaderLen || n > mtls.MaxHeaderLen || n > len(b) || h.Port == 0 || h.Protocol > target.Opaque {
				t.Fatalf("accepted %x as %+v (n=%d)", b, h, n)
			}
			if rerr != nil || rh != h {
				t.Fatalf("ReadHeader disagrees: %+v %v", rh, rerr)
			}
			// Re-encoding the decoded header parses to the same value.
			h2, _, err := mtls.ParseHeader(mtls.AppendHeader(nil, h))
			if err != nil || h2 != h {
				t.Fatalf("re-encode: %+v %v", h2, err)
			}
		} else if rerr == nil {
			t.Fatalf("ReadHeader accepted %x that ParseHeader refused (%v)", b, err)
		}
	})
}
