package app

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftmesh/weft/proxy/config"
)

// upstream is a net/http server on loopback counting its connections.
type upstream struct {
	addr  string
	conns atomic.Int64
	srv   *http.Server
}

func newUpstream(t *testing.T, h http.Handler, opts ...func(*http.Server)) *upstream {
	t.Helper()
	ln := listen(t)
	u := &upstream{addr: ln.Addr().String()}
	u.srv = &http.Server{Handler: h, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
		}
	}}
	for _, o := range opts {
		o(u.srv)
	}
	go u.srv.Serve(ln)
	t.Cleanup(func() { u.srv.Close() })
	return u
}

// proxiedClient is an HTTP client whose every connection goes to the
// proxy's outbound listener, as iptables would make it.
func proxiedClient(h *harness) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", h.outbound())
		},
		MaxIdleConnsPerHost: 1,
	}}
}

func TestHTTP1KeepAliveAndPooling(t *testing.T) {
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	}))
	h := newHarness(t, nil)
	h.to(up.addr)
	c := proxiedClient(h)
	var clientConns atomic.Int64
	c.Transport.(*http.Transport).DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
		clientConns.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, "tcp", h.outbound())
	}
	const n = 50
	for i := range n {
		resp, err := c.Get(fmt.Sprintf("http://%s/x%d", up.addr, i))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != fmt.Sprintf("hello /x%d", i) {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
	}
	if got := clientConns.Load(); got != 1 {
		t.Errorf("client opened %d connections to the proxy, want 1 (keep-alive)", got)
	}
	if got := up.conns.Load(); got != 1 {
		t.Errorf("proxy opened %d connections upstream, want 1 (pooled)", got)
	}
	out := scrape(t, h)
	want := fmt.Sprintf(`request_total{direction="outbound",authority="%s",target_addr="%s",tls="false"} %d`, up.addr, up.addr, n)
	if !strings.Contains(out, want) {
		t.Errorf("metrics lack %q:\n%s", want, out)
	}
	if want := `tcp_open_total{direction="outbound",authority="` + up.addr + `",target_addr="` + up.addr + `",tls="false"} 1`; !strings.Contains(out, want) {
		t.Errorf("HTTP connection not in tcp metrics: lack %q", want)
	}
	if !strings.Contains(out, `weft_detect_total{direction="outbound",protocol="http1",result="detected"} 1`) {
		t.Errorf("detection not counted:\n%s", out)
	}
}

func scrape(t *testing.T, h *harness) string {
	t.Helper()
	resp, err := http.Get("http://" + h.AdminAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestStaticDiscoveryRouting: the Host picks the endpoint from
// STATIC_DISCOVERY over the original destination; unknown hosts pass
// through; opaque TCP is routed by original destination address.
func TestStaticDiscoveryRouting(t *testing.T) {
	named := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "named") }))
	orig := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "orig") }))
	echo := bannerServer(t, "echo\n")
	virtual := "198.19.0.99:7000" // never dialled: discovery maps it to echo
	disc := writeDiscovery(t, fmt.Sprintf(`
destinations:
  - authority: web.test:80
    labels: {service: web}
    endpoints: [{addr: "%s"}]
  - addresses: ["%s"]
    endpoints: [{addr: "%s"}]
`, named.addr, virtual, echo))
	h := newHarness(t, func(c *config.Config) { c.StaticDiscovery = disc })
	h.to(orig.addr)
	c := proxiedClient(h)
	for host, want := range map[string]string{"web.test": "named", "WEB.test:80": "named", "other.test": "orig"} {
		req, _ := http.NewRequest("GET", "http://"+orig.addr+"/", nil)
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			t.Errorf("Host %s reached %q, want %q", host, b, want)
		}
	}
	h.to(virtual)
	conn, err := net.Dial("tcp", h.outbound())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || line != "echo\n" {
		t.Fatalf("TCP to %s: %q %v", virtual, line, err)
	}
	out := scrape(t, h)
	if !strings.Contains(out, `request_total{direction="outbound",authority="web.test:80",target_addr="`+named.addr+`",tls="false",dst_service="web"} 2`) {
		t.Errorf("named route not in metrics:\n%s", out)
	}
}

// TestStaleUpstreamConnection: the upstream closes idle keep-alive
// connections quickly (Node's default is 5s); a POST on the proxy's pooled
// connection after that must not fail.
func TestStaleUpstreamConnection(t *testing.T) {
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %d", len(b))
	}), func(s *http.Server) { s.IdleTimeout = 100 * time.Millisecond })
	h := newHarness(t, nil)
	h.to(up.addr)
	c := proxiedClient(h)
	for i := range 4 {
		resp, err := c.Post("http://"+up.addr+"/", "text/plain", strings.NewReader(strings.Repeat("x", 1000)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "got 1000" {
			t.Fatalf("POST %d after the upstream closed its idle connection: %d %q", i, resp.StatusCode, b)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestInbound: inbound traffic goes to the original destination, or to
// 127.0.0.1:<port> with INBOUND_CONNECT_LOOPBACK, and is labelled inbound.
func TestInbound(t *testing.T) {
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "app") }))
	port := up.addr[strings.LastIndex(up.addr, ":")+1:]
	for _, tt := range []struct {
		name     string
		loopback bool
		orig     string
	}{
		{"original destination", false, up.addr},
		// A pod IP the proxy must not dial: loopback mode rewrites it.
		{"loopback", true, "198.18.127.250:" + port},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(c *config.Config) { c.InboundConnectLoopback = tt.loopback })
			h.to(tt.orig)
			head, body := rawExchange(t, h.InboundAddr().String(), "GET / HTTP/1.1\r\nHost: web:80\r\nConnection: close\r\n\r\n")
			if !strings.HasPrefix(head, "HTTP/1.1 200") || body != "app" {
				t.Fatalf("%q %q", head, body)
			}
			want := `request_total{direction="inbound",authority="web:80",target_addr="127.0.0.1:` + port + `",tls="false"} 1`
			if out := scrape(t, h); !strings.Contains(out, want) {
				t.Fatalf("metrics lack %s\n%s", want, out)
			}
		})
	}
}
