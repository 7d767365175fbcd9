package h2

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/weftmesh/weft/proxy/internal/benchcpu"
	"github.com/weftmesh/weft/proxy/record"
)

// The unary benchmarks run client, proxy and backend in one process, so
// allocs/op covers all three: compare ViaProxy with Direct to get the
// proxy's share.

func benchH2CUnary(b *testing.B, viaProxy bool) {
	ep, _ := startH2CBackend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok")
	}))
	addr := ep.Addr.String()
	if viaProxy {
		_, addr = startProxy(b, Config{Router: staticRouter{ep}})
	}
	client := h2cClient(b)
	req, _ := http.NewRequest("GET", "http://"+addr+"/bench", nil)
	req.Header.Set("X-Request-Id", "0123456789")
	req.Header.Set("Accept", "*/*")
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

func BenchmarkH2CUnaryDirect(b *testing.B)   { benchH2CUnary(b, false) }
func BenchmarkH2CUnaryViaProxy(b *testing.B) { benchH2CUnary(b, true) }

func benchGRPCUnary(b *testing.B, viaProxy, routed bool) {
	ep := startGRPCBackend(b, newTestService())
	addr := ep.Addr.String()
	if viaProxy {
		cfg := Config{Router: staticRouter{ep}}
		if routed {
			// A retryable route with a timeout (replay buffer, deadline)
			// and a load handle: the whole routed path.
			ep.Load = &countingLoad{}
			cfg = Config{Router: staticRouter{ep}, Observer: &nopRouteObserver{},
				Profiles: staticProfiles{compileRoute(b, true, time.Minute), staticRouter{ep}}}
		}
		_, addr = startProxy(b, cfg)
	}
	c := grpcClient(b, addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	in := &testgrpc.SimpleRequest{ResponseSize: 64}
	b.ReportAllocs()
	b.ResetTimer()
	stop := benchcpu.Start(b)
	for b.Loop() {
		if _, err := c.UnaryCall(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	stop()
}

func BenchmarkGRPCUnaryDirect(b *testing.B)   { benchGRPCUnary(b, false, false) }
func BenchmarkGRPCUnaryViaProxy(b *testing.B) { benchGRPCUnary(b, true, false) }

// BenchmarkGRPCUnaryRouted goes through a profile route (retryable, with
// a timeout) and reports to a load handle and a route observer.
func BenchmarkGRPCUnaryRouted(b *testing.B) { benchGRPCUnary(b, true, true) }

// nopRouteObserver drops every record.
type nopRouteObserver struct{}

func (nopRouteObserver) ObserveHTTP(*record.HTTP)               {}
func (nopRouteObserver) ObserveRoute(*record.HTTP, bool)        {}
func (nopRouteObserver) ObserveRouteAttempt(*record.HTTP, bool) {}

func BenchmarkHeaderCopy(b *testing.B) {
	src := http.Header{
		"Content-Type":   {"application/grpc"},
		"Date":           {"Sun, 22 Nov 2026 00:00:00 GMT"},
		"Grpc-Encoding":  {"identity"},
		"X-Request-Id":   {"0123456789"},
		"Cache-Control":  {"no-cache"},
		"Content-Length": {"42"},
	}
	dst := make(http.Header, 16)
	b.ReportAllocs()
	for b.Loop() {
		clear(dst)
		copyResponseHeader(dst, src)
	}
}

func BenchmarkStripHopByHop(b *testing.B) {
	h := http.Header{
		"Content-Type": {"application/grpc"},
		"Te":           {"trailers"},
		"User-Agent":   {"grpc-go/1.85.0"},
		":authority":   {"svc:80"},
	}
	b.ReportAllocs()
	for b.Loop() {
		stripHopByHop(h)
	}
}

func BenchmarkResetGuardScan(b *testing.B) {
	// 64 KiB of 16 KiB DATA frames, read in 4 KiB chunks.
	frame := make([]byte, frameHeaderLen+16<<10)
	frame[0], frame[1], frame[2] = 0, 0x40, 0
	var stream []byte
	for range 4 {
		stream = append(stream, frame...)
	}
	g := &resetGuard{max: 100, window: time.Second}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		for off := 0; off < len(stream); off += 4096 {
			g.scanRead(stream[off:min(off+4096, len(stream))])
		}
	}
}
