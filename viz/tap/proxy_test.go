package tap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	tapv1 "github.com/weftmesh/weft/api/tap/v1"
	"github.com/weftmesh/weft/proxy/identity/identitytest"
	"github.com/weftmesh/weft/proxy/pipeline"
	"github.com/weftmesh/weft/proxy/record"
	proxytap "github.com/weftmesh/weft/proxy/tap"
)

type hdrs [][2]string

func (h hdrs) Range(f func(name, value string) bool) {
	for _, kv := range h {
		if !f(kv[0], kv[1]) {
			return
		}
	}
}

// TestServerWithProxyTapServer: the tap API server against the proxy's own
// tap server (proxy/tap): the --to filter reaches the proxy as destination
// labels and only matching exchanges come back, with the destination's
// workload and the Authorization header redacted.
func TestServerWithProxyTapServer(t *testing.T) {
	hub := proxytap.NewHub(proxytap.Config{})
	e := newTapEnv(t, func(t *testing.T, ca *identitytest.CA) int {
		srv, err := proxytap.NewServer(proxytap.ServerConfig{Hub: hub, Bundle: ca.Bundle(), AuthorizedIDs: []string{vizID},
			SVIDs: fixedSVID{ca.SVID(t, "spiffe://cluster.local/ns/demo/sa/web", time.Hour)}})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(srv.Stop)
		return ln.Addr().(*net.TCPAddr).Port
	})
	// Traffic while taps run, bounded: web calls books and authors.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 2000 && ctx.Err() == nil; i++ {
			for _, dst := range []string{"books", "authors"} {
				rec := &record.HTTP{Direction: record.Outbound, Method: "GET", Path: "/" + dst, GRPCStatus: -1, Peer: record.Peer{
					TLS: true, ClientID: "spiffe://cluster.local/ns/demo/sa/web", ServerID: "spiffe://cluster.local/ns/demo/sa/" + dst,
					TargetAddr: "198.18.0.30:7000", Labels: []record.Label{{Name: "dst_deployment", Value: dst}, {Name: "dst_namespace", Value: "demo"}}}}
				x := hub.Begin(&pipeline.TapRequest{Rec: rec, Scheme: "http", Authority: dst + ".demo.svc.cluster.local:7000",
					Source: "127.0.0.1:40000", Headers: hdrs{{"authorization", "Bearer secret"}, {"accept", "*/*"}}})
				if x != nil {
					x.Response(200, hdrs{}, time.Millisecond)
					x.End(&pipeline.TapEnd{GRPCStatus: -1, Bytes: 10, Duration: 2 * time.Millisecond})
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	defer func() { cancel(); wg.Wait() }()

	filter, _ := protojson.Marshal(&tapv1.Filter{Direction: "outbound", DestinationLabels: map[string]string{"deployment": "books", "namespace": "demo"}})
	body := e.waitOK(t, Request{Filter: filter, Max: 5, Duration: "10s"})
	d := NewDecoder(bytes.NewReader(body))
	reqs := 0
	for {
		ev, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		src, dst := Peers(ev)
		if src.Name() != "deploy/web" || dst.Name() != "deploy/books" || !ev.Event.GetTls() {
			t.Errorf("event %v: %s → %s", ev.Event, src.Name(), dst.Name())
		}
		if r := ev.Event.GetRequest(); r != nil {
			reqs++
			for _, h := range r.GetHeaders() {
				if h.GetName() == "authorization" && h.GetValue() == "Bearer secret" {
					t.Errorf("authorization not redacted: %v", h)
				}
			}
		}
	}
	if reqs != 5 {
		t.Errorf("%d requests, want --max 5", reqs)
	}
}
