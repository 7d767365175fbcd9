package tap

import (
	"testing"
	"time"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
	"github.com/weftmesh/weft/proxy/pipeline"
	"github.com/weftmesh/weft/proxy/record"
)

// BenchmarkIdleActive is the per-request cost when no tap runs.
func BenchmarkIdleActive(b *testing.B) {
	h := NewHub(Config{})
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if h.Active() {
			n++
		}
	}
	if n != 0 {
		b.Fatal("active")
	}
}

// BenchmarkExchangeOneTap is a full begin/response/end with one matching
// tap whose queue is drained concurrently.
func BenchmarkExchangeOneTap(b *testing.B) {
	h := NewHub(Config{DefaultRPS: 1 << 30, MaxRPS: 1 << 30})
	t, err := h.Open(&tapv1.ObserveRequest{})
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-t.Events():
			case <-stop:
				return
			}
		}
	}()
	hdr := headers{{"Authorization", "x"}, {"Accept", "*/*"}, {"User-Agent", "bench"}}
	b.ReportAllocs()
	for b.Loop() {
		if !h.Active() {
			b.Fatal("inactive")
		}
		x := begin(h, record.Outbound, "GET", "http", "web:80", "/books", hdr, webPeer)
		x.Response(200, hdr[:1], time.Millisecond)
		x.End(&pipeline.TapEnd{GRPCStatus: -1, Bytes: 100, Duration: time.Millisecond, Reset: false})
	}
}
