package h2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/weftmesh/weft/proxy/proxyerr"
	"github.com/weftmesh/weft/proxy/record"
	"github.com/weftmesh/weft/proxy/target"
)

func TestUnaryH2C(t *testing.T) {
	var sawHost, sawUA, sawTE, sawHdr atomic.Value
	ep, _ := startH2CBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawHost.Store(r.Host)
		sawUA.Store(fmt.Sprint(r.Header["User-Agent"]))
		sawTE.Store(r.Header.Get("Te"))
		sawHdr.Store(r.Header.Get("X-Req"))
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Sum")
		w.Header().Set("X-Resp", "yes")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(append([]byte("echo:"), body...))
		w.Header().Set("X-Sum", fmt.Sprint(len(body)))
	}))
	obs := &countingObserver{}
	_, addr := startProxy(t, Config{Direction: record.Outbound, Router: staticRouter{ep}, Observer: obs})

	req, _ := http.NewRequest("POST", "http://"+addr+"/a/b?q=1", strings.NewReader("hello"))
	req.Host = "svc.ns.svc.cluster.local:8080"
	req.Header.Set("X-Req", "r1")
	req.Header.Set("Te", "trailers")
	resp, err := h2cClient(t).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated || string(body) != "echo:hello" || resp.Header.Get("X-Resp") != "yes" {
		t.Fatalf("response %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if got := resp.Trailer.Get("X-Sum"); got != "5" {
		t.Fatalf("trailer X-Sum = %q, want 5 (trailers %v)", got, resp.Trailer)
	}
	if got := sawHost.Load(); got != "svc.ns.svc.cluster.local:8080" {
		t.Fatalf("backend saw :authority %q", got)
	}
	if got := sawTE.Load(); got != "trailers" {
		t.Fatalf("backend saw te %q", got)
	}
	if got := sawHdr.Load(); got != "r1" {
		t.Fatalf("backend saw X-Req %q", got)
	}
	if got := sawUA.Load(); got != "[Go-http-client/2.0]" {
		t.Fatalf("backend saw user-agent %v (client's own must pass unchanged)", got)
	}
	recs := obs.waitRecords(t, 1)
	r := recs[0]
	if r.StatusCode != 201 || r.GRPCStatus != -1 || r.Method != "POST" || r.Path != "/a/b" || r.Err != nil ||
		r.Direction != record.Outbound || r.Peer.Authority != "svc.ns.svc.cluster.local:8080" || r.Peer.TargetAddr != ep.Addr.String() || r.Latency <= 0 {
		t.Fatalf("record %+v", r)
	}
}

// genReader yields n pseudo-random-free bytes without holding them.
type genReader struct{ left int64 }

func (g *genReader) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	for i := range p {
		p[i] = byte(i)
	}
	g.left -= int64(len(p))
	return len(p), nil
}

func TestLargeBodiesStreamBounded(t *testing.T) {
	const size = 64 << 20
	ep, _ := startH2CBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil || n != size {
			http.Error(w, fmt.Sprintf("read %d: %v", n, err), 500)
			return
		}
		w.Header().Set("Trailer", "X-Read")
		_, _ = io.Copy(w, &genReader{left: size})
		w.Header().Set("X-Read", fmt.Sprint(n))
	}))
	obs := &countingObserver{}
	_, addr := startProxy(t, Config{Router: staticRouter{ep}, Observer: obs})

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()

	req, _ := http.NewRequest("PUT", "http://"+addr+"/upload", &genReader{left: size})
	resp, err := h2cClient(t).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	close(stop)
	<-sampled
	if err != nil || n != size || resp.StatusCode != 200 {
		t.Fatalf("status %d, read %d bytes: %v", resp.StatusCode, n, err)
	}
	if got := resp.Trailer.Get("X-Read"); got != fmt.Sprint(size) {
		t.Fatalf("backend read %q bytes", got)
	}
	growth := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("heap in use: base %d MiB, peak growth %d KiB while moving 2×%d MiB", base.HeapInuse>>20, growth>>10, size>>20)
	// Client, proxy and backend share this process; flow-control windows
	// (4 MiB per stream upstream, 1 MiB downstream) bound what each buffers.
	if growth > 48<<20 {
		t.Fatalf("heap grew by %d MiB while streaming 2×64 MiB", growth>>20)
	}
	obs.waitRecords(t, 1)
}

func TestUpstreamResetPropagates(t *testing.T) {
	ep, _ := startH2CBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/before-headers" {
			panic(http.ErrAbortHandler)
		}
		w.WriteHeader(200)
		_, _ = w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		time.Sleep(50 * time.Millisecond)
		panic(http.ErrAbortHandler) // RST_STREAM mid-body
	}))
	obs := &countingObserver{}
	_, addr := startProxy(t, Config{Router: staticRouter{ep}, Observer: obs})
	client := h2cClient(t)

	req, _ := http.NewRequest("GET", "http://"+addr+"/mid-body", nil)
	resp, err := client.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	var se http2.StreamError
	if !errors.As(err, &se) {
		t.Fatalf("mid-body reset: read %q, err %v; want a stream reset, not a clean end", body, err)
	}
	if string(body) != "partial" {
		t.Fatalf("data before the reset: %q", body)
	}

	req, _ = http.NewRequest("GET", "http://"+addr+"/before-headers", nil)
	resp, err = client.RoundTrip(req)
	if !errors.As(err, &se) {
		t.Fatalf("reset before headers: got response %v, err %v; want a stream reset", resp, err)
	}
	recs := obs.waitRecords(t, 2)
	for _, r := range recs {
		if r.ErrKind != proxyerr.Protocol || r.Err == nil {
			t.Fatalf("record %+v: want a protocol error", r)
		}
	}
}

func TestClientCancelCancelsUpstream(t *testing.T) {
	started := make(chan struct{}, 1)
	canceled := make(chan struct{}, 1)
	ep, _ := startH2CBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			canceled <- struct{}{}
		case <-time.After(20 * time.Second):
		}
	}))
	obs := &countingObserver{}
	_, addr := startProxy(t, Config{Router: staticRouter{ep}, Observer: obs})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/hang", nil)
	resp, err := h2cClient(t).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-started
	cancel() // RST_STREAM(CANCEL) to the proxy
	select {
	case <-canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("backend did not observe the client's cancellation")
	}
	r := obs.waitRecords(t, 1)[0]
	if r.ErrKind != proxyerr.Canceled || r.StatusCode != 200 {
		t.Fatalf("record %+v: want canceled after 200", r)
	}
}

func TestRouterAndDialErrors(t *testing.T) {
	closed := listen(t)
	closedEP := endpointOf(t, closed)
	closed.Close()
	tests := []struct {
		name       string
		router     target.Router
		wantStatus int
		wantHeader string
	}{
		{"no endpoints", errRouter{proxyerr.New(proxyerr.NoEndpoints, errors.New("svc has no endpoints"))}, 503, "no_endpoints"},
		{"connect refused", staticRouter{closedEP}, 502, "connect_failed"},
		{"untyped router error", errRouter{errors.New("boom")}, 502, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := &countingObserver{}
			_, addr := startProxy(t, Config{Router: tt.router, Observer: obs})
			req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
			resp, err := h2cClient(t).RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || resp.Header.Get(proxyerr.Header) != tt.wantHeader {
				t.Fatalf("got %d %s=%q (%q), want %d %q", resp.StatusCode, proxyerr.Header, resp.Header.Get(proxyerr.Header), body, tt.wantStatus, tt.wantHeader)
			}
			r := obs.waitRecords(t, 1)[0]
			if r.StatusCode != tt.wantStatus || r.ErrKind.String() != tt.wantHeader || r.Err == nil || !r.Failed() {
				t.Fatalf("record %+v", r)
			}
		})
	}
}

func TestUpstreamPoolSharedAcrossClientConns(t *testing.T) {
	ep, _ := startH2CBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	d := &countingDialer{}
	_, addr := startProxy(t, Config{Router: staticRouter{ep}, Dialer: d})
	for c := 0; c < 3; c++ {
		client := h2cClient(t) // a new client connection each time
		for i := 0; i < 10; i++ {
			req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
			resp, err := client.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		client.CloseIdleConnections()
	}
	if n := d.n.Load(); n != 1 {
		t.Fatalf("upstream dials = %d over 3 client connections × 10 requests, want 1 pooled connection", n)
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"no router", Config{}, false},
		{"minimal", Config{Router: errRouter{}}, true},
		{"bad direction", Config{Router: errRouter{}, Direction: 7}, false},
		{"small frame", Config{Router: errRouter{}, MaxReadFrameSize: 1000}, false},
		{"small header list", Config{Router: errRouter{}, MaxHeaderListSize: 10}, false},
		{"negative window", Config{Router: errRouter{}, ResetWindow: -1}, false},
	}
	for _, tt := range tests {
		_, err := New(tt.cfg)
		if (err == nil) != tt.ok {
			t.Errorf("%s: New error %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
