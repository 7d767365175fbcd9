package app

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// oneShotUpstream answers every connection's first request with resp and
// closes.
func oneShotUpstream(t *testing.T, resp string) string {
	t.Helper()
	ln := listen(t)
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
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				io.WriteString(c, resp)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestResponseShapes(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name, method, resp string
		wantStatus         int
		wantBody           string
	}{
		{"close-delimited body", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close", 200, "until close"},
		{"HTTP/1.0 upstream", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nold!", 200, "old!"},
		{"HEAD keeps Content-Length, no body", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 200, ""},
		{"204", "GET", "HTTP/1.1 204 No Content\r\n\r\n", 204, ""},
		{"304", "GET", "HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n", 304, ""},
		{"chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 200, "abcde"},
		{"upstream 500 passes through", "GET", "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops", 500, "oops"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := oneShotUpstream(t, tt.resp)
			h.to(addr)
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
				Dial: func(_, _ string) (net.Conn, error) { return net.Dial("tcp", h.outbound()) },
			}}
			req, _ := http.NewRequest(tt.method, "http://"+addr+"/", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != tt.wantStatus || string(b) != tt.wantBody {
				t.Fatalf("got %d %q %v, want %d %q", resp.StatusCode, b, err, tt.wantStatus, tt.wantBody)
			}
			if resp.Header.Get("weft-proxy-error") != "" {
				t.Fatalf("proxy error header on an upstream response")
			}
			if tt.method == "HEAD" && resp.ContentLength != 1000 {
				t.Errorf("HEAD Content-Length %d, want 1000", resp.ContentLength)
			}
		})
	}
}
