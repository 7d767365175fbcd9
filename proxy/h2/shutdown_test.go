package h2

import (
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"golang.org/x/net/http2"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// clientConn opens one prior-knowledge HTTP/2 client connection to addr.
func clientConn(t *testing.T, addr string) *http2.ClientConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := (&http2.Transport{AllowHTTP: true}).NewClientConn(nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestShutdownGoAwayDrainsInFlight(t *testing.T) {
	release := make(chan struct{})
	ep, _ := startH2CBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/slow" {
			_, _ = io.WriteString(w, "quick")
			return
		}
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "done")
	}))
	p, addr := startProxy(t, Config{Router: staticRouter{ep}})
	cc := clientConn(t, addr)
	idle := clientConn(t, addr)
	if err := idle.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}

	req, _ := http.NewRequest("GET", "http://"+addr+"/slow", nil)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		shut <- p.Shutdown(ctx)
	}()
	waitFor(t, "GOAWAY on the busy connection", func() bool { return cc.State().Closing })
	waitFor(t, "the idle connection to close", func() bool { return idle.State().Closed })

	// New streams on the draining connection are refused by the client.
	req2, _ := http.NewRequest("GET", "http://"+addr+"/quick", nil)
	if _, err := cc.RoundTrip(req2); err == nil {
		t.Fatal("a new stream was accepted after GOAWAY")
	}
	// A connection arriving during the drain is served, then told to go.
	late := clientConn(t, addr)
	req3, _ := http.NewRequest("GET", "http://"+addr+"/quick", nil)
	resp3, err := late.RoundTrip(req3)
	if err != nil {
		t.Fatal(err)
	}
	b3, _ := io.ReadAll(resp3.Body)
	resp3.Body.Close()
	if string(b3) != "quick" {
		t.Fatalf("late connection got %q", b3)
	}
	waitFor(t, "GOAWAY on the late connection", func() bool { return late.State().Closing })

	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a stream in flight", err)
	default:
	}
	close(release)
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "done" {
		t.Fatalf("in-flight stream: %q, %v", body, err)
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Shutdown did not return after the drain")
	}
	if n := p.activeConns(); n != 0 {
		t.Fatalf("%d client connections left after Shutdown", n)
	}
}

func TestShutdownDeadlineClosesConnections(t *testing.T) {
	ep, _ := startH2CBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	p, addr := startProxy(t, Config{Router: staticRouter{ep}})
	cc := clientConn(t, addr)
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := p.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Shutdown = %v, want deadline exceeded", err)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("stream completed cleanly after a forced shutdown")
	}
	waitFor(t, "connections to be released", func() bool { return p.activeConns() == 0 })
}

func TestNoGoroutineLeak(t *testing.T) {
	runtime.GC()
	before := runtime.NumGoroutine()
	t.Run("traffic", func(t *testing.T) {
		svc := newTestService()
		gep := startGRPCBackend(t, svc)
		hep, _ := startH2CBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(w, r.Body)
		}))
		_, gaddr := startProxy(t, Config{Router: staticRouter{gep}})
		_, haddr := startProxy(t, Config{Router: staticRouter{hep}})
		c := grpcClient(t, gaddr)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for i := 0; i < 20; i++ {
			if _, err := c.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: 100}); err != nil {
				t.Fatal(err)
			}
		}
		bctx, bcancel := context.WithCancel(ctx)
		bs, err := c.FullDuplexCall(bctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = bs.Send(&testgrpc.StreamingOutputCallRequest{ResponseParameters: []*testgrpc.ResponseParameters{{Size: 1}}})
		_, _ = bs.Recv()
		bcancel()
		<-svc.canceled
		hc := h2cClient(t)
		for i := 0; i < 20; i++ {
			req, _ := http.NewRequest("POST", "http://"+haddr+"/", io.LimitReader(&genReader{left: 1 << 20}, 1<<20))
			resp, err := hc.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		raw := dialRaw(t, haddr)
		_ = raw.request(1)
	})
	checkNoGoroutineLeak(t, before, 2)
}
