package http1

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func parseReq(t testing.TB, raw string) *fasthttp.Request {
	t.Helper()
	var r fasthttp.Request
	r.Header.DisableNormalizing()
	if err := r.Header.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	return &r
}

func TestStripHopByHop(t *testing.T) {
	tests := []struct {
		name        string
		raw         string
		keepUpgrade bool
		kept, gone  []string
	}{
		{
			name: "standard and named",
			raw: "GET / HTTP/1.1\r\nHost: a\r\nconnection: X-A, x-b\r\nX-A: 1\r\nX-b: 2\r\nX-C: 3\r\nKeep-Alive: 1\r\n" +
				"te: trailers\r\nPROXY-CONNECTION: x\r\nUpgrade: ws\r\nProxy-Authorization: x\r\n\r\n",
			kept: []string{"X-C"},
			gone: []string{"connection", "X-A", "X-b", "Keep-Alive", "te", "PROXY-CONNECTION", "Upgrade", "Proxy-Authorization"},
		},
		{
			name: "named fields survive a later Connection: close",
			raw:  "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nX-Keep: 2\r\nconnection: close\r\n\r\n",
			kept: []string{"X-Keep"},
			gone: []string{"X-Hop", "Connection"},
		},
		{
			name:        "upgrade keeps Connection and Upgrade",
			raw:         "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, X-A\r\nUpgrade: websocket\r\nX-A: 1\r\nSec-WebSocket-Key: k\r\n\r\n",
			keepUpgrade: true,
			kept:        []string{"Connection", "Upgrade", "Sec-WebSocket-Key"},
			gone:        []string{"X-A"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := parseReq(t, tt.raw)
			stripHopByHop(&r.Header, new(scratch), tt.keepUpgrade)
			for _, k := range tt.kept {
				if len(r.Header.Peek(k)) == 0 {
					t.Errorf("%s removed", k)
				}
			}
			for _, k := range tt.gone {
				if len(r.Header.Peek(k)) != 0 {
					t.Errorf("%s kept", k)
				}
			}
		})
	}
}

func TestSmugglingAndUpgradeDetection(t *testing.T) {
	if !smuggling(&parseReq(t, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n").Header) {
		t.Error("CL+TE not flagged")
	}
	if smuggling(&parseReq(t, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n").Header) {
		t.Error("CL alone flagged")
	}
	if !isUpgrade(&parseReq(t, "GET / HTTP/1.1\r\nHost: a\r\nconnection: keep-alive, UPGRADE\r\nupgrade: websocket\r\n\r\n").Header) {
		t.Error("upgrade not detected")
	}
	if isUpgrade(&parseReq(t, "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n").Header) {
		t.Error("Upgrade without Connection: upgrade detected")
	}
}

const benchReq = "POST /api/v1/items HTTP/1.1\r\nHost: web.demo.svc.cluster.local\r\nUser-Agent: bench\r\n" +
	"Accept: */*\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: keep-alive, X-Trace-Hop\r\n" +
	"X-Trace-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Request-Id: 0f3c\r\nAuthorization: Bearer t\r\n\r\n"

func BenchmarkStripHopByHop(b *testing.B) {
	src := parseReq(b, benchReq)
	var h fasthttp.RequestHeader
	h.DisableNormalizing()
	var s scratch
	b.ReportAllocs()
	for b.Loop() {
		src.Header.CopyTo(&h)
		stripHopByHop(&h, &s, false)
	}
	if len(h.Peek("X-Trace-Hop")) != 0 || len(h.Peek("X-Request-Id")) == 0 {
		b.Fatal("not stripped")
	}
}

func BenchmarkFramingChecks(b *testing.B) {
	r := parseReq(b, benchReq)
	b.ReportAllocs()
	for b.Loop() {
		if smuggling(&r.Header) || isUpgrade(&r.Header) {
			b.Fatal("misclassified")
		}
	}
}
