package app

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestConnectFailureGoesToAnotherEndpoint: one of the Service's four
// endpoints refuses connections; POSTs (never retried by a profile) through
// HTTP/1 and HTTP/2 all succeed on the other three, and each connect retry
// is counted in weft_proxy_connect_retries_total.
func TestConnectFailureGoesToAnotherEndpoint(t *testing.T) {
	port, ips := backends(t, 3, func(i int, w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})
	// 127.0.0.4 listens on nothing: connection refused.
	cp := newControlPlane(t, port, append(ips, "127.0.0.4")...)
	h := meshClient(t, cp, port, nil)
	for _, tc := range []struct {
		name, scheme string
		client       *http.Client
	}{{"http1", "http", h1Client()}, {"h2c", "http", h2cClient()}} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 40 {
				body := strings.Repeat("x", i)
				req, _ := http.NewRequest("POST", tc.scheme+"://"+h.outbound()+"/", strings.NewReader(body))
				req.Host = booksHost + ":80"
				resp, err := tc.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != body {
					t.Fatalf("request %d: %d %s %q", i, resp.StatusCode, resp.Header.Get("weft-proxy-error"), b)
				}
			}
		})
	}
	m := scrape(t, h)
	re := regexp.MustCompile(`weft_proxy_connect_retries_total\{direction="outbound"\} ([1-9][0-9]*)`)
	if !re.MatchString(m) {
		t.Fatalf("connect retries not counted:\n%s", grepLines(m, "connect_retries"))
	}
	t.Log(re.FindString(m))
}
