package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/weftmesh/weft/proxy/config"
	"github.com/weftmesh/weft/proxy/identity"
	"github.com/weftmesh/weft/proxy/identity/identitytest"
	"github.com/weftmesh/weft/proxy/mtls"
)

const (
	webID   = "spiffe://cluster.local/ns/demo/sa/web"
	booksID = "spiffe://cluster.local/ns/demo/sa/books"
	otherID = "spiffe://cluster.local/ns/demo/sa/other"
)

// identityFor is the identity config of a proxy whose ServiceAccount token
// is tok, against the identity service svc.
func identityFor(t testing.TB, ca *identitytest.CA, svc *identitytest.Service, id, tok string) *identity.Config {
	t.Helper()
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	return &identity.Config{
		LocalID: spiffeid.RequireFromString(id), TokenFile: f, ServiceAddr: svc.Addr,
		TrustAnchorsPEM: ca.AnchorPEM, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
	}
}

// waitReady polls the admin /ready endpoint until it answers 200.
func waitReady(t testing.TB, h *harness) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + h.AdminAddr().String() + "/ready")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("not ready: %d %s", resp.StatusCode, b)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tap is a TCP relay that records every byte crossing it: the wire between
// the two proxies.
type tap struct {
	ln  net.Listener
	mu  sync.Mutex
	buf bytes.Buffer
}

func newTap(t *testing.T, to string) *tap {
	tp := &tap{ln: listen(t)}
	go func() {
		for {
			c, err := tp.ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", to)
				if err != nil {
					return
				}
				defer u.Close()
				done := make(chan struct{}, 2)
				cp := func(dst, src net.Conn) {
					b := make([]byte, 32<<10)
					for {
						n, err := src.Read(b)
						if n > 0 {
							tp.mu.Lock()
							tp.buf.Write(b[:n])
							tp.mu.Unlock()
							if _, err := dst.Write(b[:n]); err != nil {
								break
							}
						}
						if err != nil {
							break
						}
					}
					if tc, ok := dst.(*net.TCPConn); ok {
						tc.CloseWrite()
					}
					done <- struct{}{}
				}
				go cp(u, c)
				go cp(c, u)
				<-done
				<-done
			}()
		}
	}()
	return tp
}

func (tp *tap) port() uint16 { return uint16(tp.ln.Addr().(*net.TCPAddr).Port) }

func (tp *tap) seen() []byte {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return bytes.Clone(tp.buf.Bytes())
}

// TestMeshMTLS: two proxies with certificates from the real identity
// service exchange HTTP/1, gRPC and opaque TCP over mTLS; the wire between
// them never carries the plaintext; metrics carry tls="true" and both
// identities; a peer presenting another identity is refused, and so is
// plaintext under all-authenticated.
func TestMeshMTLS(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	svc := identitytest.StartService(t, ca, identitytest.Options{Users: identitytest.Reviewer{
		"tok-web": "system:serviceaccount:demo:web", "tok-books": "system:serviceaccount:demo:books",
	}})

	const marker = "weft-plaintext-marker-7f3a"
	// Backends (the server pod's applications).
	httpLn := listen(t)
	go http.Serve(httpLn, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s", r.URL.Path, body, marker)
	}))
	grpcLn := listen(t)
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go gs.Serve(grpcLn)
	t.Cleanup(gs.Stop)
	tcpLn := listen(t)
	go func() {
		for {
			c, err := tcpLn.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()

	server := newHarnessWith(t, func(c *config.Config) {
		c.Identity = identityFor(t, ca, svc, booksID, "tok-books")
		c.Policy = mtls.Policy{Default: mtls.AllAuthenticated}
		c.InboundOpaquePorts = []uint16{uint16(tcpLn.Addr().(*net.TCPAddr).Port)}
	}, Options{})
	wire := newTap(t, server.InboundAddr().String())

	disc := fmt.Sprintf(`destinations:
  - addresses: ["198.19.0.20:80"]
    endpoints: [{addr: %q, identity: %q}]
  - addresses: ["198.19.0.21:80"]
    protocol: http2
    endpoints: [{addr: %q, identity: %q}]
  - addresses: ["198.19.0.22:6379"]
    protocol: opaque
    endpoints: [{addr: %q, identity: %q}]
  - addresses: ["198.19.0.23:80"]
    endpoints: [{addr: %q, identity: %q}]
`, httpLn.Addr(), booksID, grpcLn.Addr(), booksID, tcpLn.Addr(), booksID, httpLn.Addr(), otherID)
	client := newHarnessWith(t, func(c *config.Config) {
		c.Identity = identityFor(t, ca, svc, webID, "tok-web")
		c.StaticDiscovery = writeDiscovery(t, disc)
		c.OutboundOpaquePorts = []uint16{6379}
	}, Options{PeerInboundPort: wire.port()})
	waitReady(t, server)
	waitReady(t, client)

	// HTTP/1 (keep-alive, several requests).
	client.to("198.19.0.20:80")
	hc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}
	for i := range 5 {
		resp, err := hc.Post("http://"+client.outbound()+"/books", "text/plain", strings.NewReader(fmt.Sprint("body-", i)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != fmt.Sprintf("/books body-%d %s", i, marker) {
			t.Fatalf("http1 %d: %d %q", i, resp.StatusCode, b)
		}
	}

	// gRPC (h2c from the app, HTTP/2 over mTLS between the proxies).
	client.to("198.19.0.21:80")
	cc, err := grpc.NewClient(client.outbound(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err != nil || res.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("grpc %d: %v %v", i, res, err)
		}
	}

	// Opaque TCP.
	client.to("198.19.0.22:6379")
	c, err := net.Dial("tcp", client.outbound())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, marker)
	c.(*net.TCPConn).CloseWrite()
	echo, _ := io.ReadAll(c)
	c.Close()
	if string(echo) != marker {
		t.Fatalf("tcp echo %q", echo)
	}

	// The wire carried TLS only.
	w := wire.seen()
	if len(w) < 1000 || bytes.Contains(w, []byte(marker)) || bytes.Contains(w, []byte("body-")) || bytes.Contains(w, []byte("/books")) {
		t.Fatalf("wire (%d bytes) carries plaintext", len(w))
	}

	// A peer that must be another identity is refused by the client proxy.
	client.to("198.19.0.23:80")
	hc.CloseIdleConnections() // a new connection: its original destination is .23
	resp, err := hc.Get("http://" + client.outbound() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 || resp.Header.Get("weft-proxy-error") != "connect_failed" {
		t.Fatalf("wrong identity: %d %q", resp.StatusCode, resp.Header.Get("weft-proxy-error"))
	}

	// Plaintext to the server's inbound (as if redirected from the app
	// port) is refused under all-authenticated.
	server.to(httpLn.Addr().String())
	head, _ := rawExchange(t, server.InboundAddr().String(), "GET / HTTP/1.1\r\nHost: books\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.1 403") || !strings.Contains(head, "weft-proxy-error: unauthenticated") {
		t.Fatalf("plaintext under all-authenticated: %q", head)
	}

	cm, sm := scrape(t, client), scrape(t, server)
	sum := sha256.Sum256(ca.Issuer.Cert.Raw)
	issuerSum := hex.EncodeToString(sum[:])
	promtoolCheck(t, cm)
	promtoolCheck(t, sm)
	for _, want := range []string{
		`request_total{direction="outbound",authority="198.19.0.20:80",target_addr="` + httpLn.Addr().String() + `",tls="true",server_id="` + booksID + `"} 5`,
		`tls="true",server_id="` + booksID + `"`,
		`weft_tls_handshakes_total{direction="outbound",resumed="false"}`,
		`weft_tls_handshake_failures_total{direction="outbound",reason="peer_identity"} 1`,
		`identity_cert_refresh_total 1`,
		`weft_identity_cert_issuer_info{issuer_sha256="` + issuerSum + `"} 1`,
	} {
		if !strings.Contains(cm, want) {
			t.Errorf("client metrics lack %s\n%s", want, grepLines(cm, "tls=\"true\"", "weft_tls", "identity_"))
		}
	}
	for _, want := range []string{
		`target_addr="` + httpLn.Addr().String() + `",tls="true",client_id="` + webID + `"} 5`,
		`tcp_open_total{direction="inbound",authority="` + tcpLn.Addr().String() + `",target_addr="` + tcpLn.Addr().String() + `",tls="true",client_id="` + webID + `"} 1`,
		// the plaintext request (plus, soon, the handshake the client proxy
		// abandoned when it refused the server's identity)
		`weft_proxy_errors_total{direction="inbound",kind="unauthenticated"} `,
		`weft_tls_handshakes_total{direction="inbound"`,
	} {
		if !strings.Contains(sm, want) {
			t.Errorf("server metrics lack %s\n%s", want, grepLines(sm, "tls=\"true\"", "weft_tls", "unauth", "request_total"))
		}
	}
	if strings.Contains(sm, `tls="false"`) {
		t.Errorf("plaintext was forwarded:\n%s", grepLines(sm, `tls="false"`))
	}
	var exp float64
	for _, l := range strings.Split(cm, "\n") {
		if v, ok := strings.CutPrefix(l, "identity_cert_expiration_timestamp_seconds "); ok {
			fmt.Sscan(v, &exp)
		}
	}
	if exp < float64(time.Now().Unix()) {
		t.Errorf("identity_cert_expiration_timestamp_seconds = %v", exp)
	}
}

func grepLines(s string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") && !strings.Contains(l, "_bucket") {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// TestReadyWaitsForCertificate: /ready is 503 until the first certificate,
// then 200.
func TestReadyWaitsForCertificate(t *testing.T) {
	ca := identitytest.NewCA(t, "")
	svc := identitytest.StartService(t, ca, identitytest.Options{Users: identitytest.Reviewer{"tok-web": "system:serviceaccount:demo:web"}})
	svc.Stop()
	h := newHarnessWith(t, func(c *config.Config) { c.Identity = identityFor(t, ca, svc, webID, "tok-web") }, Options{})
	for i := 0; i < 3; i++ {
		resp, err := http.Get("http://" + h.AdminAddr().String() + "/ready")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 || !strings.Contains(string(b), "no certificate yet") {
			t.Fatalf("ready before the certificate: %d %s", resp.StatusCode, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	svc.Start()
	waitReady(t, h)
}

// promtoolCheck runs promtool check metrics on an exposition; the only
// accepted complaints are Linkerd's unit-abbreviated latency names.
func promtoolCheck(t *testing.T, exposition string) {
	t.Helper()
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	res, _ := cmd.CombinedOutput()
	for _, l := range strings.Split(strings.TrimSpace(string(res)), "\n") {
		switch l {
		case "", "response_latency_ms metric names should not contain abbreviated units",
			"route_response_latency_ms metric names should not contain abbreviated units":
		default:
			t.Errorf("promtool: %s", l)
		}
	}
}
