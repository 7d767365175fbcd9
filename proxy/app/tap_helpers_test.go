package app

import (
	"context"
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

// tapped is one tapped exchange's events, in arrival order.
type tapped struct {
	evs []*tapv1.Event
}

func (x *tapped) kinds() string {
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

func (x *tapped) req() *tapv1.RequestInit  { return x.evs[0].GetRequest() }
func (x *tapped) end() *tapv1.ResponseEnd  { return x.evs[len(x.evs)-1].GetEnd() }
func (x *tapped) rsp() *tapv1.ResponseInit { return x.evs[1].GetResponse() }

// byPath groups events into exchanges by id, keyed by the request path.
func byPath(t *testing.T, evs []*tapv1.Event) map[string][]*tapped {
	t.Helper()
	ids := map[uint64]*tapped{}
	out := map[string][]*tapped{}
	for _, ev := range evs {
		if ev.GetLost() != nil {
			t.Fatalf("events lost: %v", ev)
		}
		x := ids[ev.GetId()]
		if x == nil {
			x = &tapped{}
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
