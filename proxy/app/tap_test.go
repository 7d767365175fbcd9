package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
)

// TestTapProxyPair: a real tap client on both proxies of a meshed pair
// sees every HTTP/1, HTTP/2 and gRPC exchange (unary, failing, streaming,
// reset) as req → rsp → end with the peers' identities, tls and the
// destination's labels; every listed header is redacted on the stream; a
// client with another identity is refused and counted.
func TestTapProxyPair(t *testing.T) {
	h1, h2 := tapBackends(t)
	downLn := listen(t)
	down := downLn.Addr().String()
	downLn.Close() // nothing listens there: connect_failed
	p := newTapPair(t, h1, h2, down)
	if p.server.TapAddr() == nil || p.client.TapAddr() == nil {
		t.Fatal("tap server not started")
	}
	const exchanges = 9
	viz := func(h *harness, id string) tapv1.TapClient { return dialTap(t, p.ca, h.TapAddr().String(), vizID, id) }
	outbound := observe(t, viz(p.client, webID), p.client, exchanges+1) // + the connect failure
	inbound := observe(t, viz(p.server, booksID), p.server, exchanges)

	secrets := map[string]string{"Authorization": "Bearer " + secret, "Proxy-Authorization": "Basic " + secret,
		"Cookie": "sid=" + secret, "X-Api-Key": secret}
	// HTTP/1: three GETs and a POST on one keep-alive connection.
	p.client.to("198.19.0.20:80")
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
	for i := range 4 {
		method, body := "GET", ""
		if i == 3 {
			method, body = "POST", "payload"
		}
		req, _ := http.NewRequest(method, "http://"+p.client.outbound()+"/books/"+fmt.Sprint(i), strings.NewReader(body))
		for k, v := range secrets {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("/books/%d %s", i, body); resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("http1 %d: %d %q, want %q", i, resp.StatusCode, b, want)
		}
	}

	// A proxy error (outbound only: nothing reaches the server proxy).
	p.client.to("198.19.0.22:80")
	hc.CloseIdleConnections() // the original destination is the connection's
	req, _ := http.NewRequest("GET", "http://"+p.client.outbound()+"/down", nil)
	for k, v := range secrets {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 || resp.Header.Get("weft-proxy-error") != "connect_failed" {
		t.Fatalf("down: %d %q", resp.StatusCode, resp.Header.Get("weft-proxy-error"))
	}

	// HTTP/2 and gRPC over h2c from the app.
	p.client.to("198.19.0.21:80")
	h2t := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, p.client.outbound())
	}}
	defer h2t.CloseIdleConnections()
	req, _ = http.NewRequest("GET", "http://books.demo/h2", nil)
	for k, v := range secrets {
		req.Header.Set(k, v)
	}
	resp, err = h2t.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "hello over h2" {
		t.Fatalf("h2: %d %q", resp.StatusCode, b)
	}
	req, _ = http.NewRequest("GET", "http://books.demo/reset", nil)
	for k, v := range secrets {
		req.Header.Set(k, v)
	}
	resp, err = h2t.RoundTrip(req)
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("reset: the client saw no error")
	}

	cc, err := grpc.NewClient(p.client.outbound(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	tc := testgrpc.NewTestServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := tc.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseSize: 10}); err != nil {
		t.Fatal(err)
	}
	_, err = tc.UnaryCall(ctx, &testgrpc.SimpleRequest{ResponseStatus: &testgrpc.EchoStatus{Code: int32(codes.NotFound), Message: "no book"}})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("unary NotFound: %v", err)
	}
	st, err := tc.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{
		ResponseParameters: []*testgrpc.ResponseParameters{{Size: 100}, {Size: 200}, {Size: 300}}})
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; ; n++ {
		if _, err := st.Recv(); err == io.EOF {
			if n != 3 {
				t.Fatalf("stream: %d messages", n)
			}
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}

	for _, side := range []struct {
		name   string
		evs    []*tapv1.Event
		n      int
		dir    string
		client string
		server string
	}{
		{"outbound", outbound(), exchanges + 1, "outbound", "", booksID},
		{"inbound", inbound(), exchanges, "inbound", webID, ""},
	} {
		t.Run(side.name, func(t *testing.T) {
			if len(side.evs) != 3*side.n {
				t.Errorf("%d events, want %d (req, rsp, end per exchange)", len(side.evs), 3*side.n)
			}
			xs := byPath(t, side.evs)
			counts := map[string]int{}
			for path, list := range xs {
				counts[path] = len(list)
			}
			want := map[string]int{"/books/0": 1, "/books/1": 1, "/books/2": 1, "/books/3": 1, "/h2": 1, "/reset": 1,
				"/grpc.testing.TestService/UnaryCall": 2, "/grpc.testing.TestService/StreamingOutputCall": 1}
			if side.dir == "outbound" {
				want["/down"] = 1
			}
			if fmt.Sprint(counts) != fmt.Sprint(want) {
				t.Fatalf("exchanges by path %v, want %v", counts, want)
			}
			for path, list := range xs {
				for _, x := range list {
					checkExchange(t, side.dir, side.client, side.server, path, x)
				}
			}
			if s := fmt.Sprint(side.evs); strings.Contains(s, secret) {
				t.Fatalf("a secret left the proxy: %s", s)
			}
		})
	}

	// Another identity is refused at the handshake, and counted.
	other := dialTap(t, p.ca, p.server.TapAddr().String(), otherID, booksID)
	octx, ocancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ocancel()
	ost, err := other.Observe(octx, &tapv1.ObserveRequest{})
	if err == nil {
		_, err = ost.Recv()
	}
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("other identity: err = %v, want Unavailable (handshake refused)", err)
	}
	// So is a client without a certificate.
	plain, err := grpc.NewClient(p.server.TapAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	pst, err := tapv1.NewTapClient(plain).Observe(octx, &tapv1.ObserveRequest{})
	if err == nil {
		_, err = pst.Recv()
	}
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("plaintext client: err = %v, want Unavailable", err)
	}
	// The server counts a refusal when its side of the handshake fails,
	// which may be just after the client gave up: poll, bounded.
	var m string
	for i := 0; ; i++ {
		m = scrape(t, p.server)
		if metricValue(m, "tap_refused_total") >= 2 {
			break
		}
		if i == 100 {
			t.Fatalf("tap_refused_total < 2 (two refused clients)\n%s", grepLines(m, "tap_"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	promtoolCheck(t, m)
	if v := metricValue(m, "tap_opened_total"); v != 1 {
		t.Fatalf("tap_opened_total = %v, want 1", v)
	}
}

// checkExchange checks one exchange's order, peer facts, redaction and end.
func checkExchange(t *testing.T, dir, clientID, serverID, path string, x *tapped) {
	t.Helper()
	if got := x.kinds(); got != "req,rsp,end" {
		t.Errorf("%s: events %s, want req,rsp,end", path, got)
		return
	}
	meshed := path != "/down" // the failing destination is not meshed
	for _, ev := range x.evs {
		if ev.GetDirection() != dir || ev.GetTls() != meshed || !strings.HasPrefix(ev.GetSourceAddr(), "127.0.0.1:") || ev.GetTargetAddr() == "" ||
			meshed && (clientID != "" && ev.GetClientId() != clientID || serverID != "" && ev.GetServerId() != serverID) {
			t.Errorf("%s: event lacks peer facts: %v", path, ev)
		}
		if dir == "outbound" && ev.GetDestinationLabels()["deployment"] != "books" {
			t.Errorf("%s: destination labels %v", path, ev.GetDestinationLabels())
		}
	}
	req, rsp, end := x.req(), x.rsp(), x.end()
	if req.GetScheme() != "http" || req.GetAuthority() == "" {
		t.Errorf("%s: request %v", path, req)
	}
	redacted := []string{"Authorization", "Cookie", "X-Api-Key"}
	if dir == "outbound" { // a hop-by-hop field: the inbound side never sees it
		redacted = append(redacted, "Proxy-Authorization")
	}
	grpc := strings.HasPrefix(path, "/grpc.")
	if !grpc {
		for _, name := range redacted {
			if vs := headerValues(req.GetHeaders(), name); len(vs) != 1 || vs[0] != "REDACTED" {
				t.Errorf("%s: request %s = %q, want REDACTED", path, name, vs)
			}
		}
		if vs := headerValues(rsp.GetHeaders(), "Set-Cookie"); meshed && path != "/reset" && (len(vs) != 1 || vs[0] != "REDACTED") {
			t.Errorf("%s: response Set-Cookie = %q, want REDACTED", path, vs)
		}
	}
	wantStatus := int32(200)
	if !meshed {
		wantStatus = 502
	}
	if rsp.GetStatus() != wantStatus || rsp.GetLatencyUs() <= 0 || rsp.GetLatencyUs() > end.GetDurationUs() {
		t.Errorf("%s: response %v, end %v", path, rsp, end)
	}
	type want struct {
		grpc  int32
		bytes int64 // -1: any positive
		reset bool
		kind  string
	}
	var w want
	switch {
	case strings.HasPrefix(path, "/books/"):
		w = want{grpc: -1, bytes: int64(len(path) + 1)}
		if path == "/books/3" {
			w.bytes += int64(len("payload"))
		}
	case path == "/down":
		w = want{grpc: -1, bytes: int64(len("connect_failed\n")), kind: "connect_failed"}
	case path == "/h2":
		w = want{grpc: -1, bytes: int64(len("hello over h2"))}
	case path == "/reset":
		w = want{grpc: -1, bytes: int64(len("partial")), reset: true, kind: "protocol_error"}
	case strings.HasSuffix(path, "StreamingOutputCall"):
		// Three length-prefixed messages of payloads 100, 200 and 300:
		// 5 + 104, 5 + 206 and 5 + 306 bytes.
		w = want{grpc: 0, bytes: 631}
	default: // the two unary calls: one OK, one NOT_FOUND (trailers-only, no body)
		w = want{grpc: end.GetGrpcStatus(), bytes: -1}
		if end.GetGrpcStatus() == int32(codes.NotFound) {
			w.bytes = 0
		} else if end.GetGrpcStatus() != 0 {
			t.Errorf("%s: grpc-status %d", path, end.GetGrpcStatus())
		}
	}
	ok := end.GetGrpcStatus() == w.grpc && end.GetReset_() == w.reset && end.GetErrorKind() == w.kind &&
		(w.bytes < 0 && end.GetResponseBytes() > 0 || end.GetResponseBytes() == w.bytes)
	if !ok {
		t.Errorf("%s: end %v, want %+v", path, end, w)
	}
}
