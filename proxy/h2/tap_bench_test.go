package h2

import (
	"io"
	"net/http"
	"testing"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
	"github.com/weftmesh/weft/proxy/internal/benchcpu"
	"github.com/weftmesh/weft/proxy/tap"
)

// The tap benchmarks compare one h2c request through the proxy with no
// Tap hook (Off), with a hub but no tap open (Idle: the cost every request
// pays once tap is configured) and with one tap taking every request
// (All: limits raised so nothing is rate-limited; a goroutine drains the
// events as the tap server would).

func benchH2CTap(b *testing.B, mode string) {
	ep, _ := startH2CBackend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok")
	}))
	cfg := Config{Router: staticRouter{ep}}
	if mode != "off" {
		hub := tap.NewHub(tap.Config{DefaultRPS: 1 << 30, MaxRPS: 1 << 30})
		cfg.Tap = hub
		if mode == "all" {
			drainTap(b, hub)
		}
	}
	_, addr := startProxy(b, cfg)
	client := h2cClient(b)
	req, _ := http.NewRequest("GET", "http://"+addr+"/bench", nil)
	req.Header.Set("X-Request-Id", "0123456789")
	req.Header.Set("Accept", "*/*")
	req.Header.Set("Authorization", "Bearer secret")
	b.ReportAllocs()
	b.ResetTimer()
	stop := benchcpu.Start(b)
	for b.Loop() {
		resp, err := client.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	stop()
}

// drainTap opens one tap on hub that takes every request and discards its
// events until cleanup.
func drainTap(b *testing.B, hub *tap.Hub) {
	t, err := hub.Open(&tapv1.ObserveRequest{MaxRps: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-t.Events():
			case <-stop:
				return
			}
		}
	}()
	b.Cleanup(func() { close(stop); t.Close() })
}

func BenchmarkH2CTapOff(b *testing.B)  { benchH2CTap(b, "off") }
func BenchmarkH2CTapIdle(b *testing.B) { benchH2CTap(b, "idle") }
func BenchmarkH2CTapAll(b *testing.B)  { benchH2CTap(b, "all") }
