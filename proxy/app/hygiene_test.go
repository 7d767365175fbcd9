package app

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftmesh/weft/proxy/config"
)

// rawUpstream accepts connections, captures each request head and answers
// with resp.
func rawUpstream(t *testing.T, resp string) (addr string, heads chan string) {
	t.Helper()
	ln := listen(t)
	heads = make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var sb strings.Builder
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						sb.WriteString(line)
						if line == "\r\n" {
							break
						}
					}
					heads <- sb.String()
					io.WriteString(c, resp)
				}
			}()
		}
	}()
	return ln.Addr().String(), heads
}

func TestHopByHopAndHeaderCase(t *testing.T) {
	addr, heads := rawUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Upstream-CASE: yes\r\nConnection: X-Secret-Resp\r\nX-Secret-Resp: hidden\r\nKeep-Alive: timeout=5\r\n\r\nok")
	h := newHarness(t, nil)
	h.to(addr)
	head, body := rawExchange(t, h.outbound(), "GET /p HTTP/1.1\r\nHost: svc.test:80\r\n"+
		"X-MiXeD-Case: 1\r\nConnection: keep-alive, X-Hop-Named\r\nX-Hop-Named: drop me\r\n"+
		"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nUpgrade-Insecure-Requests: 1\r\n"+
		"Proxy-Authorization: Basic Zm9v\r\nX-Keep: kept\r\nconnection: close\r\n\r\n")
	var up string
	select {
	case up = <-heads:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream saw no request")
	}
	for _, want := range []string{"X-MiXeD-Case: 1\r\n", "X-Keep: kept\r\n", "Upgrade-Insecure-Requests: 1\r\n", "Host: svc.test:80\r\n"} {
		if !strings.Contains(up, want) {
			t.Errorf("upstream request lacks %q:\n%s", want, up)
		}
	}
	low := strings.ToLower(up)
	for _, gone := range []string{"x-hop-named", "keep-alive", "proxy-connection", "\r\nte:", "proxy-authorization", "connection:"} {
		if strings.Contains(low, gone) {
			t.Errorf("upstream request still has %q:\n%s", gone, up)
		}
	}
	if !strings.HasPrefix(head, "HTTP/1.1 200") || body != "ok" {
		t.Fatalf("response %q %q", head, body)
	}
	if !strings.Contains(head, "X-Upstream-CASE: yes") {
		t.Errorf("response header case changed:\n%s", head)
	}
	lowHead := strings.ToLower(head)
	if strings.Contains(lowHead, "x-secret-resp") || strings.Contains(lowHead, "keep-alive") {
		t.Errorf("response hop-by-hop fields forwarded:\n%s", head)
	}
	// The client asked for close: the proxy honours it on its side.
	if !strings.Contains(lowHead, "connection: close") {
		t.Errorf("client's Connection: close not honoured:\n%s", head)
	}
}

func TestSmugglingAndLimits(t *testing.T) {
	addr, heads := rawUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	h := newHarness(t, func(c *config.Config) { c.MaxHeaderBytes = 4096 })
	h.to(addr)
	tests := []struct {
		name, req  string
		wantStatus string
		wantHeader string
	}{
		{"CL+TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", "400", "bad_request"},
		{"TE+CL lowercase", "POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\n", "400", "bad_request"},
		{"duplicate CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "400", "bad_request"},
		{"bad TE", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "400", "bad_request"},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", "400", "bad_request"},
		{"oversized header", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("a", 8000) + "\r\n\r\n", "431", "header_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head, _ := rawExchange(t, h.outbound(), tt.req)
			if !strings.HasPrefix(head, "HTTP/1.1 "+tt.wantStatus) {
				t.Fatalf("got %q, want %s", head, tt.wantStatus)
			}
			if !strings.Contains(head, "weft-proxy-error: "+tt.wantHeader) {
				t.Fatalf("no weft-proxy-error: %s in %q", tt.wantHeader, head)
			}
		})
	}
	select {
	case got := <-heads:
		t.Fatalf("a rejected request reached the upstream:\n%s", got)
	default:
	}
}

func TestErrorStatuses(t *testing.T) {
	// A port nobody listens on: take one and close it.
	ln := listen(t)
	closed := ln.Addr().String()
	ln.Close()
	slow := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	}))
	disc := writeDiscovery(t, `
destinations:
  - authority: empty.test:80
    endpoints: []
`)
	h := newHarness(t, func(c *config.Config) {
		c.ResponseTimeout = 300 * time.Millisecond
		c.StaticDiscovery = disc
	})
	tests := []struct {
		name, dst, host string
		want            int
		kind            string
	}{
		{"connect refused", closed, "svc.test", 502, "connect_failed"},
		{"response timeout", slow.addr, "svc.test", 504, "timeout"},
		{"no endpoints", closed, "empty.test", 503, "no_endpoints"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.to(tt.dst)
			head, _ := rawExchange(t, h.outbound(), "GET / HTTP/1.1\r\nHost: "+tt.host+"\r\nConnection: close\r\n\r\n")
			if !strings.HasPrefix(head, "HTTP/1.1 "+strconv.Itoa(tt.want)) || !strings.Contains(head, "weft-proxy-error: "+tt.kind) {
				t.Fatalf("got %q, want %d with weft-proxy-error: %s", head, tt.want, tt.kind)
			}
		})
	}
	out := scrape(t, h)
	for _, want := range []string{
		`weft_proxy_errors_total{direction="outbound",kind="connect_failed"} 1`,
		`weft_proxy_errors_total{direction="outbound",kind="timeout"} 1`,
		`weft_proxy_errors_total{direction="outbound",kind="no_endpoints"} 1`,
		`status_code="504",classification="failure",error="timeout"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestSlowHeaders: a client that never finishes its request head is
// answered 408 and closed; a slow body is not cut by the header timeout.
func TestSlowHeaders(t *testing.T) {
	up := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	h := newHarness(t, func(c *config.Config) { c.HeaderTimeout = 300 * time.Millisecond })
	h.to(up.addr)
	head, _ := rawExchange(t, h.outbound(), "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
	if !strings.HasPrefix(head, "HTTP/1.1 408") {
		t.Fatalf("slow head: %q, want 408", head)
	}
	c, err := net.Dial("tcp", h.outbound())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nabc")
	time.Sleep(800 * time.Millisecond) // longer than the header timeout
	io.WriteString(c, "def")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "abcdef" {
		t.Fatalf("slow body: %d %q", resp.StatusCode, b)
	}
}
