package app

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftmesh/weft/proxy/config"
)

func TestMetricsPassPromtool(t *testing.T) {
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(503)
		}
	}))
	h := newHarness(t, nil)
	h.to(up.addr)
	c := proxiedClient(h)
	for _, p := range []string{"/", "/fail", "/"} {
		resp, err := c.Get("http://" + up.addr + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Get("http://" + h.AdminAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("content type %q", ct)
	}
	out := string(b)
	for _, want := range []string{
		`status_code="503",classification="failure",error=""} 1`,
		`status_code="200",classification="success",error=""} 2`,
		`response_latency_ms_bucket{`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(out)
	res, _ := cmd.CombinedOutput()
	for _, l := range strings.Split(strings.TrimSpace(string(res)), "\n") {
		// Linkerd's metric name carries a unit abbreviation; keep it for compatibility.
		if l != "" && l != "response_latency_ms metric names should not contain abbreviated units" {
			t.Errorf("promtool: %s", l)
		}
	}
}

// TestDrainZeroFailures: a client doing keep-alive requests in a bounded
// loop while the proxy is told to shut down sees no failed request; /ready
// turns 503 at once; the proxy exits cleanly once the client stopped.
func TestDrainZeroFailures(t *testing.T) {
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	h := newHarness(t, func(c *config.Config) {
		c.ShutdownGracePeriod = 20 * time.Second
		c.ShutdownQuiet = 700 * time.Millisecond
	})
	h.to(up.addr)
	client := proxiedClient(h)
	var conns sync.Map
	client.Transport.(*http.Transport).DialContext = nil
	client.Transport.(*http.Transport).Dial = func(_, _ string) (net.Conn, error) {
		c, err := net.Dial("tcp", h.outbound())
		if err == nil {
			conns.Store(c.LocalAddr().String(), true)
		}
		return c, err
	}
	const n = 300
	var failures, closes int
	stopped := make(chan error, 1)
	for i := range n {
		if i == 100 {
			go func() { stopped <- h.stop(t) }()
			waitFor(t, func() bool { return h.tracker.Draining() })
			resp, err := http.Get("http://" + h.AdminAddr().String() + "/ready")
			if err != nil || resp.StatusCode != 503 {
				t.Fatalf("/ready while draining: %v %v", resp, err)
			}
			resp.Body.Close()
		}
		var err error
		for attempt := 0; attempt < 3; attempt++ {
			var resp *http.Response
			resp, err = client.Get("http://" + up.addr + "/")
			if err != nil {
				continue // the client retries on connection close
			}
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.Close {
				closes++
			}
			if rerr != nil || resp.StatusCode != 200 || string(b) != "ok" {
				err = fmt.Errorf("bad response %d %q %v", resp.StatusCode, b, rerr)
				continue
			}
			break
		}
		if err != nil {
			failures++
			t.Logf("request %d failed: %v", i, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if failures != 0 {
		t.Fatalf("%d of %d requests failed", failures, n)
	}
	if closes < 200 {
		t.Errorf("only %d responses carried Connection: close during drain, want every one (200)", closes)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("drain ended with %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("proxy did not exit after the client stopped")
	}
	if _, err := net.DialTimeout("tcp", h.outbound(), time.Second); err == nil {
		t.Error("listener still open after drain")
	}
}

// TestNoLeaks: after a bounded load the goroutine count and open fds return
// to their baseline.
func TestNoLeaks(t *testing.T) {
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	echo := bannerServer(t, "")
	h := newHarness(t, func(c *config.Config) { c.IdleTimeout = 300 * time.Millisecond })
	settle := func() (int, int) { time.Sleep(50 * time.Millisecond); return runtime.NumGoroutine(), fds(t) }
	var g0, f0 int
	// Round 0 warms up what is cached on purpose (Go's pool of splice
	// pipes, fasthttp's buffers); the baseline is taken after it.
	for round := range 6 {
		if round == 1 {
			time.Sleep(time.Second) // pooled upstream conns idle out (IdleTimeout)
			g0, f0 = settle()
		}
		h.to(up.addr)
		tr := &http.Transport{Dial: func(_, _ string) (net.Conn, error) { return net.Dial("tcp", h.outbound()) }}
		c := &http.Client{Transport: tr}
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 25 {
					resp, err := c.Get("http://" + up.addr + "/")
					if err != nil {
						t.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
		}
		wg.Wait()
		tr.CloseIdleConnections()
		h.to(echo)
		for range 10 {
			conn, err := net.Dial("tcp", h.outbound())
			if err != nil {
				t.Fatal(err)
			}
			conn.Write([]byte("\x00opaque"))
			conn.(*net.TCPConn).CloseWrite()
			io.ReadAll(conn)
			conn.Close()
		}
	}
	const margin = 5
	var g, f int
	for range 100 {
		g, f = settle()
		if g <= g0+margin && f <= f0+margin {
			t.Logf("goroutines %d→%d, fds %d→%d", g0, g, f0, f)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	t.Fatalf("leak: goroutines %d→%d, fds %d→%d\n%s\n%s", g0, g, f0, f, fdList(), buf[:runtime.Stack(buf, true)])
}

func fds(t *testing.T) int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

func fdList() string {
	es, _ := os.ReadDir("/proc/self/fd")
	var sb strings.Builder
	for _, e := range es {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fmt.Fprintf(&sb, "%s→%s ", e.Name(), l)
	}
	return sb.String()
}
