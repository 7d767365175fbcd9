package tap

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
	"github.com/weftmesh/weft/proxy/identity/identitytest"
	"github.com/weftmesh/weft/proxy/pipeline"
	"github.com/weftmesh/weft/proxy/record"
)

const (
	vizID   = "spiffe://cluster.local/ns/weft-viz/sa/weft-viz"
	proxyID = "spiffe://cluster.local/ns/demo/sa/web"
)

// startServer runs a tap server on loopback and returns its address.
func startServer(t *testing.T, h *Hub, ca *identitytest.CA) string {
	t.Helper()
	s, err := NewServer(ServerConfig{Hub: h, SVIDs: ca.SVID(t, proxyID, time.Hour), Bundle: ca.Bundle(), AuthorizedIDs: []string{vizID}})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func dialTap(t *testing.T, ca *identitytest.CA, addr, clientID string) tapv1.TapClient {
	t.Helper()
	tc := tlsconfig.MTLSClientConfig(ca.SVID(t, clientID, time.Hour), ca.Bundle(), tlsconfig.AuthorizeID(spiffeid.RequireFromString(proxyID)))
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return tapv1.NewTapClient(cc)
}

// waitActive waits (bounded) until the server registered the tap.
func waitActive(t *testing.T, h *Hub) {
	t.Helper()
	for i := 0; !h.Active(); i++ {
		if i > 500 {
			t.Fatal("tap never became active")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServerStreamsRedactedEvents(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	h := NewHub(Config{RedactHeaders: []string{"X-Api-Key"}})
	cl := dialTap(t, ca, startServer(t, h, ca), vizID)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := cl.Observe(ctx, &tapv1.ObserveRequest{Limit: 3, Filter: &tapv1.Filter{PathPrefix: "/books"}})
	if err != nil {
		t.Fatal(err)
	}
	waitActive(t, h)
	secrets := headers{{"Authorization", "Bearer top-secret"}, {"proxy-authorization", "Basic top-secret"},
		{"Cookie", "session=top-secret"}, {"x-api-key", "top-secret"}, {"Accept", "application/json"}}
	for i, path := range []string{"/books/1", "/authors", "/books/2", "/books/3", "/books/4"} {
		x := begin(h, record.Outbound, "GET", "http", "web:80", path, secrets, webPeer)
		if x == nil {
			continue // filtered out, or past the limit
		}
		x.Response(500+i, headers{{"Set-Cookie", "id=top-secret"}, {"Content-Type", "text/plain"}}, time.Duration(i+1)*time.Millisecond)
		x.End(&pipeline.TapEnd{GRPCStatus: -1, Bytes: 42, Duration: 5 * time.Millisecond, Reset: i == 2})
	}
	var evs []*tapv1.Event
	for {
		ev, err := st.Recv()
		if err != nil {
			break // the server ends the stream after the limit
		}
		evs = append(evs, ev)
	}
	if len(evs) != 9 {
		t.Fatalf("got %d events, want 9 (3 exchanges × req/rsp/end)", len(evs))
	}
	paths := []string{}
	for i, ev := range evs {
		if !ev.GetTls() || ev.GetClientId() != webPeer.ClientID || ev.GetDestinationLabels()["deployment"] != "web" {
			t.Errorf("event %d lacks peer facts: %v", i, ev)
		}
		if s := ev.String(); strings.Contains(s, "top-secret") {
			t.Errorf("event %d leaks a secret: %s", i, s)
		}
		switch k := ev.Kind.(type) {
		case *tapv1.Event_Request:
			paths = append(paths, k.Request.GetPath())
			for _, hd := range k.Request.GetHeaders() {
				if hd.Name != "Accept" && hd.Value != Redacted {
					t.Errorf("request header %s = %q, want %s", hd.Name, hd.Value, Redacted)
				}
			}
		case *tapv1.Event_Response:
			if hd := k.Response.GetHeaders()[0]; hd.Value != Redacted {
				t.Errorf("response header %s = %q", hd.Name, hd.Value)
			}
		case *tapv1.Event_End:
			if k.End.GetResponseBytes() != 42 {
				t.Errorf("end bytes %d", k.End.GetResponseBytes())
			}
		}
	}
	if strings.Join(paths, ",") != "/books/1,/books/2,/books/3" {
		t.Fatalf("tapped paths %v", paths)
	}
	if s := h.Stats(); s.Opened != 1 || s.Refused != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestServerRefusesOtherIdentity(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	h := NewHub(Config{})
	addr := startServer(t, h, ca)
	other := identitytest.NewCA(t, "")
	for _, c := range []struct {
		name string
		cl   tapv1.TapClient
	}{
		{"other workload", dialTap(t, ca, addr, "spiffe://cluster.local/ns/demo/sa/curious")},
		{"untrusted CA", dialTap(t, other, addr, vizID)},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := c.cl.Observe(ctx, &tapv1.ObserveRequest{})
		if err == nil {
			_, err = st.Recv()
		}
		cancel()
		if err == nil {
			t.Fatalf("%s: tap accepted", c.name)
		}
	}
	// The server counts a refusal when its side of the handshake returns,
	// which may be after the client already failed: wait (bounded).
	for i := 0; h.Stats().Refused < 2 && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if s := h.Stats(); s.Refused < 2 || s.Opened != 0 {
		t.Fatalf("stats %+v: want ≥2 refused, 0 opened", s)
	}
	if h.Active() {
		t.Fatal("a refused client started a tap")
	}
}
