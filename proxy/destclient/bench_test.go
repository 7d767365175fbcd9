package destclient

import (
	"fmt"
	"testing"
)

func BenchmarkResolve100(b *testing.B) {
	cp := newControlPlaneB(b)
	ips := make([]string, 100)
	for i := range ips {
		ips[i] = fmt.Sprintf("198.18.1.%d", i+1)
	}
	cp.setEndpoints(b, "books", ips...)
	c := newClientB(b, cp)
	for _, bc := range []struct{ name, authority string }{
		{"by-name", booksName},
		{"by-address", ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			deadline := 0
			for c.lookup(bc.authority, booksOrig).bal.Len() != 100 {
				if deadline++; deadline > 1e6 {
					b.Fatal("endpoints never arrived")
				}
				ep, err := c.Resolve(bc.authority, booksOrig)
				if err != nil {
					b.Fatal(err)
				}
				ep.Load.End(ep.Load.Begin(), false)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ep, err := c.Resolve(bc.authority, booksOrig)
					if err != nil {
						b.Fatal(err)
					}
					ep.Load.End(ep.Load.Begin(), false)
				}
			})
		})
	}
}
