package harness

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftmesh/weft/identity"
	"github.com/weftmesh/weft/proxy/discovery"
	proxyidentity "github.com/weftmesh/weft/proxy/identity"
	"github.com/weftmesh/weft/proxy/target"
)

// The rendered document is parsed by the proxy's own STATIC_DISCOVERY parser and resolves the
// backend address to itself with the server's identity and the load's protocol.
func TestRenderStaticDiscovery(t *testing.T) {
	upstream := netip.MustParseAddrPort("198.18.128.3:8081")
	for _, tc := range []struct {
		kind Kind
		want target.Protocol
	}{{KindHTTP, target.HTTP1}, {KindGRPC, target.HTTP2}, {KindTCP, target.Opaque}} {
		doc, err := RenderStaticDiscovery(upstream.String(), tc.kind, MeshID(ServerSide))
		if err != nil {
			t.Fatal(err)
		}
		st, err := discovery.ParseStatic(doc)
		if err != nil {
			t.Fatalf("%s: proxy refuses the document: %v\n%s", tc.kind, err, doc)
		}
		ep, err := st.Resolve(upstream.String(), upstream)
		if err != nil {
			t.Fatalf("%s: resolve: %v", tc.kind, err)
		}
		if ep.Addr != upstream || ep.Identity != "spiffe://cluster.local/ns/bench/sa/server" || ep.Protocol != tc.want {
			t.Errorf("%s: endpoint %+v", tc.kind, ep)
		}
	}
	if _, err := RenderStaticDiscovery("server:8080", KindHTTP, MeshID(ServerSide)); err == nil {
		t.Error("a host name upstream was accepted")
	}
}

func TestWeftMTLSCommand(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "weft-proxy")
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	mesh := &MeshSpec{IdentityAddr: "198.18.128.1:40000", AnchorsFile: "/tmp/anchors.pem", ServerIdentity: MeshID(ServerSide)}
	for _, side := range []Side{ClientSide, ServerSide} {
		sdir := filepath.Join(dir, string(side))
		if err := os.Mkdir(sdir, 0o755); err != nil {
			t.Fatal(err)
		}
		args, env, err := weftMTLSCommand(ProxySpec{Kind: KindGRPC, Side: side, Upstream: "198.18.128.3:8081", Dir: sdir, WeftBin: bin, Mesh: mesh})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(args, []string{bin}) {
			t.Errorf("%s args %v", side, args)
		}
		token := filepath.Join(sdir, "token")
		for _, want := range []string{
			"GOMAXPROCS=1",
			"WEFT_PROXY_IDENTITY_SVC_ADDR=198.18.128.1:40000",
			"WEFT_PROXY_IDENTITY_TRUST_ANCHORS_FILE=/tmp/anchors.pem",
			"WEFT_PROXY_IDENTITY_TOKEN_FILE=" + token,
			"WEFT_PROXY_POD_NAMESPACE=bench",
			"WEFT_PROXY_POD_SERVICE_ACCOUNT=" + string(side),
		} {
			if !slices.Contains(env, want) {
				t.Errorf("%s env lacks %q: %v", side, want, env)
			}
		}
		b, err := os.ReadFile(token)
		if err != nil || string(b) != meshAccounts[side].Token {
			t.Errorf("%s token %q, %v", side, b, err)
		}
		if fi, err := os.Stat(token); err != nil || fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Uid != ProxyUID {
			t.Errorf("%s token must be 0600 and owned by the proxy uid: %v %v", side, fi, err)
		}
		disc := filepath.Join(sdir, "discovery.yaml")
		hasDisc := slices.Contains(env, "WEFT_PROXY_STATIC_DISCOVERY="+disc)
		if _, err := os.Stat(disc); (err == nil) != hasDisc || hasDisc != (side == ClientSide) {
			t.Errorf("%s: static discovery only on the client side: env %v, file %v", side, hasDisc, err)
		}
	}
	if _, _, err := weftMTLSCommand(ProxySpec{Side: ClientSide, Dir: dir, WeftBin: bin}); err == nil || !strings.Contains(err.Error(), "identity service") {
		t.Errorf("no mesh spec: %v", err)
	}
}

func TestBenchReviewer(t *testing.T) {
	r := newBenchReviewer()
	for side, want := range map[Side]string{ClientSide: "system:serviceaccount:bench:client", ServerSide: "system:serviceaccount:bench:server"} {
		if u, err := r.Review(context.Background(), meshAccounts[side].Token); err != nil || u != want {
			t.Errorf("%s: %q, %v", side, u, err)
		}
	}
	var inv *identity.InvalidTokenError
	if _, err := r.Review(context.Background(), "guess"); !errors.As(err, &inv) {
		t.Errorf("unknown token: %v", err)
	}
}

// The real identity service, started as the harness does, certifies each side's proxy for its
// ServiceAccount: the proxy's own identity Manager, configured from the environment the harness
// renders, obtains an SVID with the side's SPIFFE ID.
func TestStartIdentity(t *testing.T) {
	dir := t.TempDir()
	id, err := startIdentity(context.Background(), netip.MustParseAddr("127.0.0.1"), dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer id.Close()
	for _, side := range []Side{ClientSide, ServerSide} {
		token := filepath.Join(dir, string(side)+".token")
		if err := os.WriteFile(token, []byte(meshAccounts[side].Token), 0o600); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{}
		for _, kv := range meshEnv(&MeshSpec{IdentityAddr: id.Addr, AnchorsFile: id.AnchorsFile}, side, token) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		cfg, err := proxyidentity.FromEnv(func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("%s: the proxy refuses the harness's environment: %v", side, err)
		}
		m, err := proxyidentity.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		m.Start(ctx)
		select {
		case <-m.Ready():
		case <-time.After(15 * time.Second):
			t.Fatalf("%s: no certificate: %v", side, m.Snapshot().LastError)
		}
		svid, err := m.GetX509SVID()
		cancel()
		if err != nil || svid.ID.String() != MeshID(side) {
			t.Errorf("%s: svid %v, %v", side, svid, err)
		}
	}
}

const metricsText = `# HELP weft_tls_handshakes_total Total count of completed mTLS handshakes.
# TYPE weft_tls_handshakes_total counter
weft_tls_handshakes_total{direction="outbound",resumed="false"} 3
weft_tls_handshakes_total{direction="outbound",resumed="true"} 61
weft_tls_handshakes_total{direction="inbound",resumed="false"} 0
weft_tls_handshakes_total{direction="inbound",resumed="true"} 2
# TYPE request_total counter
request_total{direction="outbound"} 1000
`

func TestParseHandshakes(t *testing.T) {
	h, err := ParseHandshakes(strings.NewReader(metricsText))
	if err != nil {
		t.Fatal(err)
	}
	if want := (TLSHandshakes{OutboundFull: 3, OutboundResumed: 61, InboundResumed: 2}); h != want {
		t.Errorf("got %+v, want %+v", h, want)
	}
	for _, bad := range []string{
		"# TYPE request_total counter\nrequest_total 1\n",
		"weft_tls_handshakes_total{direction=\"sideways\",resumed=\"false\"} 1\n",
		"weft_tls_handshakes_total{direction=\"outbound\" 1\n",
	} {
		if _, err := ParseHandshakes(strings.NewReader(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestHandshakeDelta(t *testing.T) {
	c0 := TLSHandshakes{}
	c1 := TLSHandshakes{OutboundFull: 3, OutboundResumed: 61}                   // the pool was built in warm-up
	s1 := TLSHandshakes{InboundFull: 3, InboundResumed: 61}                     // the server saw the same
	c2 := TLSHandshakes{OutboundFull: 4, OutboundResumed: 66, InboundFull: 7}   // 1 + 5 new connections
	s2 := TLSHandshakes{InboundFull: 4, InboundResumed: 66, OutboundResumed: 9} // unrelated direction kept apart
	h := NewHandshakeResult(c0, c1, s1, c2, s2, 3000)
	if h.Client != (TLSHandshakes{OutboundFull: 1, OutboundResumed: 5, InboundFull: 7}) ||
		h.Server != (TLSHandshakes{InboundFull: 1, InboundResumed: 5, OutboundResumed: 9}) ||
		h.Warmup != c1 || h.Requests != 3000 {
		t.Errorf("%+v", h)
	}
	if got := h.PerThousand(); got != 2 { // 6 client-side outbound handshakes in 3 000 requests
		t.Errorf("PerThousand = %v, want 2", got)
	}
	if got := (HandshakeResult{}).PerThousand(); got != 0 {
		t.Errorf("no requests: %v", got)
	}
}

func TestMarkerWriter(t *testing.T) {
	var out bytes.Buffer
	calls := 0
	w := &markerWriter{out: &out, marker: MeasureMarker, fn: func() { calls++ }}
	in := "warming up\n" + MeasureMarker + "X\n" + MeasureMarker + "\nlater\n" + MeasureMarker + "\n"
	for i := 0; i < len(in); i += 7 { // split across writes
		if _, err := w.Write([]byte(in[i:min(i+7, len(in))])); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 1 || out.String() != in {
		t.Errorf("calls %d, out %q", calls, out.String())
	}
}

func TestReportMeshSection(t *testing.T) {
	p := Point{KindGRPC, 1000}
	rs := []Result{
		{Peer: "direct", Point: p, Load: LoadResult{P50: 1000, P90: 2000, P99: 3000, P999: 4000}},
		{Peer: "weft", Point: p, Load: LoadResult{P50: 1500, P90: 2500, P99: 5000, P999: 6000}, CPUMicrosPerReq: 400},
		{Peer: "weft-mtls", Point: p, Load: LoadResult{P50: 1600, P90: 2700, P99: 6000, P999: 9000}, CPUMicrosPerReq: 440,
			Handshakes: &HandshakeResult{Client: TLSHandshakes{OutboundResumed: 3}, Server: TLSHandshakes{InboundResumed: 3}, Warmup: TLSHandshakes{OutboundFull: 1}, Requests: 3000}},
	}
	var md strings.Builder
	WriteMarkdown(&md, rs, "hdr")
	want := "| grpc @ 1000 rps | weft-mtls | 0.60 / 0.70 / 3.00 / 5.00 | 0.10 / 0.20 / 1.00 / 3.00 | 440.0 | +40.0 (+10 %) | 1.00 | 0+3 / 0+3 | 1+0 |"
	if !strings.Contains(md.String(), want) {
		t.Errorf("markdown lacks %q:\n%s", want, md.String())
	}
	md.Reset()
	WriteMarkdown(&md, rs[:2], "hdr")
	if strings.Contains(md.String(), "mTLS") {
		t.Errorf("mTLS section without a mesh result:\n%s", md.String())
	}
}
