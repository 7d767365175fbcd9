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

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
	"github.com/weftmesh/weft/proxy/config"
	"github.com/weftmesh/weft/proxy/identity/identitytest"
)

const vizID = "spiffe://cluster.local/ns/weft-viz/sa/weft-viz"

// secret is the value of every header that must be redacted.
const secret = "top-secret-7c1d"

// grpcService answers UnaryCall (with the requested status) and
// StreamingOutputCall (one message per response parameter).
type grpcService struct {
	testgrpc.UnimplementedTestServiceServer
}

func (grpcService) UnaryCall(_ context.Context, in *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	if s := in.GetResponseStatus(); s != nil && s.Code != 0 {
		return nil, status.Error(codes.Code(s.Code), s.Message)
	}
	return &testgrpc.SimpleResponse{Payload: &testgrpc.Payload{Body: make([]byte, in.ResponseSize)}}, nil
}

func (grpcService) StreamingOutputCall(in *testgrpc.StreamingOutputCallRequest, st grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	for _, p := range in.ResponseParameters {
		if err := st.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: make([]byte, p.Size)}}); err != nil {
			return err
		}
	}
	return nil
}

// tapBackends starts the server pod's applications: HTTP/1 on one port; on
// another h2c serving gRPC, /h2 (plain HTTP/2) and /reset (headers and a
// little body, then RST_STREAM).
func tapBackends(t *testing.T) (h1, h2 net.Listener) {
	h1 = listen(t)
	go http.Serve(h1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		http.SetCookie(w, &http.Cookie{Name: "session", Value: secret})
		fmt.Fprintf(w, "%s %s", r.URL.Path, body)
	}))
	gs := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(gs, grpcService{})
	t.Cleanup(gs.Stop)
	h2 = listen(t)
	mux := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/h2":
			w.Header().Set("Set-Cookie", "id="+secret)
			io.WriteString(w, "hello over h2")
		case "/reset":
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		default:
			gs.ServeHTTP(w, r)
		}
	})
	srv := &http.Server{Handler: h2c.NewHandler(mux, &http2.Server{})}
	go srv.Serve(h2)
	t.Cleanup(func() { srv.Close() })
	return h1, h2
}

// dialTap opens a tap client to addr with the SPIFFE identity id, expecting
// the proxy to be serverID.
func dialTap(t testing.TB, ca *identitytest.CA, addr, id, serverID string) tapv1.TapClient {
	t.Helper()
	tc := tlsconfig.MTLSClientConfig(ca.SVID(t, id, time.Hour), ca.Bundle(), tlsconfig.AuthorizeID(spiffeid.RequireFromString(serverID)))
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return tapv1.NewTapClient(cc)
}

// observe opens a tap for limit exchanges and collects its events in the
// background; the returned func waits (bounded) for the stream's end.
func observe(t testing.TB, cl tapv1.TapClient, h *harness, limit uint32) func() []*tapv1.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	st, err := cl.Observe(ctx, &tapv1.ObserveRequest{Limit: limit, MaxRps: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan []*tapv1.Event, 1)
	go func() {
		var evs []*tapv1.Event
		for {
			ev, err := st.Recv()
			if err != nil {
				ch <- evs
				return
			}
			evs = append(evs, ev)
		}
	}()
	for i := 0; !h.tap.hub.Active(); i++ {
		if i > 1000 {
			t.Fatal("tap never became active")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return func() []*tapv1.Event {
		select {
		case evs := <-ch:
			return evs
		case <-time.After(30 * time.Second):
			t.Fatal("tap stream did not end")
			return nil
		}
	}
}

// tapPair is a client proxy (web) and a server proxy (books), both with
// identity and a tap server authorizing vizID.
type tapPair struct {
	ca             *identitytest.CA
	client, server *harness
}

func newTapPair(t *testing.T, h1, h2 net.Listener, down string) *tapPair {
	ca := identitytest.NewCA(t, "")
	svc := identitytest.StartService(t, ca, identitytest.Options{Users: identitytest.Reviewer{
		"tok-web": "system:serviceaccount:demo:web", "tok-books": "system:serviceaccount:demo:books",
	}})
	tapOn := func(c *config.Config) {
		c.TapAddr = "127.0.0.1:0"
		c.TapAuthorizedIDs = []string{vizID}
		c.TapRedactHeaders = []string{"X-Api-Key"}
	}
	server := newHarnessWith(t, func(c *config.Config) {
		c.Identity = identityFor(t, ca, svc, booksID, "tok-books")
		tapOn(c)
	}, Options{})
	port := server.InboundAddr().(*net.TCPAddr).Port
	disc := fmt.Sprintf(`destinations:
  - addresses: ["198.19.0.20:80"]
    labels: {deployment: books, namespace: demo}
    endpoints: [{addr: %q, identity: %q}]
  - addresses: ["198.19.0.21:80"]
    protocol: http2
    labels: {deployment: books, namespace: demo}
    endpoints: [{addr: %q, identity: %q}]
  - addresses: ["198.19.0.22:80"]
    labels: {deployment: books, namespace: demo}
    endpoints: [{addr: %q}]
`, h1.Addr(), booksID, h2.Addr(), booksID, down)
	client := newHarnessWith(t, func(c *config.Config) {
		c.Identity = identityFor(t, ca, svc, webID, "tok-web")
		c.StaticDiscovery = writeDiscovery(t, disc)
		tapOn(c)
	}, Options{PeerInboundPort: uint16(port)})
	waitReady(t, server)
	waitReady(t, client)
	return &tapPair{ca: ca, client: client, server: server}
}

// exchange is one tapped exchange's events, in arrival order.
type exchange struct {
	evs []*tapv1.Event
}

func (x *exchange) kinds() string {
	var ks []string
	for _, ev := range x.evs {
		switch ev.Kind.(type) {
		case *tapv1.Event_Request:
			ks = append(ks, "req")
		case *tapv1.Event_Response:
			ks = append(ks, "rsp")
		case *tapv1.Event_End:
			ks = append(ks, "end")
		case *tapv1.Event_Lost:
			ks = append(ks, "lost")
		}
	}
	return strings.Join(ks, ",")
}

func (x *exchange) req() *tapv1.RequestInit  { return x.evs[0].GetRequest() }
func (x *exchange) end() *tapv1.ResponseEnd  { return x.evs[len(x.evs)-1].GetEnd() }
func (x *exchange) rsp() *tapv1.ResponseInit { return x.evs[1].GetResponse() }

// byPath groups events into exchanges by id, keyed by the request path.
func byPath(t *testing.T, evs []*tapv1.Event) map[string][]*exchange {
	t.Helper()
	ids := map[uint64]*exchange{}
	out := map[string][]*exchange{}
	for _, ev := range evs {
		if ev.GetLost() != nil {
			t.Fatalf("events lost: %v", ev)
		}
		x := ids[ev.GetId()]
		if x == nil {
			x = &exchange{}
			ids[ev.GetId()] = x
			if r := ev.GetRequest(); r != nil {
				out[r.GetPath()] = append(out[r.GetPath()], x)
			} else {
				t.Fatalf("exchange %d starts with %v, not a request", ev.GetId(), ev)
			}
		}
		x.evs = append(x.evs, ev)
	}
	return out
}

func headerValues(hs []*tapv1.Header, name string) []string {
	var vs []string
	for _, h := range hs {
		if strings.EqualFold(h.GetName(), name) {
			vs = append(vs, h.GetValue())
		}
	}
	return vs
}

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
func checkExchange(t *testing.T, dir, clientID, serverID, path string, x *exchange) {
	t.Helper()
	if got := x.kinds(); got != "req,rsp,end" {
		t.Errorf("%s: events %s, want req,rsp,end", path, got)
		return
	}
	meshed := path != "/down" // the failing destination is not meshed
	for _, ev := range x.evs {
		if ev.GetDirection() != dir || ev.GetTls() != meshed || ev.GetSourceAddr() == "" || ev.GetTargetAddr() == "" ||
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

// metricValue is the value of the unlabelled series name in exposition m.
func metricValue(m, name string) float64 {
	for _, l := range strings.Split(m, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return -1
}
