package harness

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/weftmesh/weft/identity"
	"github.com/weftmesh/weft/internal/pki"
	"github.com/weftmesh/weft/proxy/discovery"
)

// The benchmark's identities: two ServiceAccounts in namespace MeshNamespace, one per pod, each
// proven by a fixed token that only the harness's reviewer accepts.
const (
	MeshNamespace   = "bench"
	MeshTrustDomain = identity.DefaultTrustDomain
)

// meshAccounts maps each side to its ServiceAccount and token.
var meshAccounts = map[Side]struct{ ServiceAccount, Token string }{
	ClientSide: {"client", "weft-bench-token-client"},
	ServerSide: {"server", "weft-bench-token-server"},
}

// MeshID is the SPIFFE ID the identity service issues to side's proxy.
func MeshID(side Side) string {
	return fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", MeshTrustDomain, MeshNamespace, meshAccounts[side].ServiceAccount)
}

// MeshSpec is what a proxy of a mesh peer needs besides ProxySpec: where the identity service is
// and how to prove its ServiceAccount.
type MeshSpec struct {
	// IdentityAddr is the identity service's gRPC host:port.
	IdentityAddr string
	// AnchorsFile is the PEM trust-anchor file (readable by ProxyUID).
	AnchorsFile string
	// ServerIdentity is the SPIFFE ID the client side's discovery gives the server endpoint.
	ServerIdentity string
}

// staticProtocol is the STATIC_DISCOVERY protocol hint for a load kind.
func staticProtocol(k Kind) string {
	switch k {
	case KindGRPC:
		return "http2"
	case KindTCP:
		return "opaque"
	}
	return "http1"
}

// RenderStaticDiscovery is the client-side proxy's STATIC_DISCOVERY document: the original
// destination upstream (the server pod's backend address) has one endpoint, itself, carrying
// identity, so the proxy dials it with mTLS (docs/proxy.md).
func RenderStaticDiscovery(upstream string, k Kind, identity string) ([]byte, error) {
	if _, err := netip.ParseAddrPort(upstream); err != nil {
		return nil, fmt.Errorf("static discovery upstream %q: %w", upstream, err)
	}
	f := discovery.File{Destinations: []discovery.Destination{{
		Addresses: []string{upstream},
		Protocol:  staticProtocol(k),
		Labels:    map[string]string{"service": "bench-server", "namespace": MeshNamespace},
		Endpoints: []discovery.EndpointSpec{{Addr: upstream, Identity: identity}},
	}}}
	b, err := yaml.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("render static discovery: %w", err)
	}
	return b, nil
}

// meshEnv is the identity configuration of side's proxy (docs/proxy-mtls.md), with its token in
// tokenFile.
func meshEnv(m *MeshSpec, side Side, tokenFile string) []string {
	return []string{
		"WEFT_PROXY_IDENTITY_SVC_ADDR=" + m.IdentityAddr,
		"WEFT_PROXY_IDENTITY_TRUST_ANCHORS_FILE=" + m.AnchorsFile,
		"WEFT_PROXY_IDENTITY_TOKEN_FILE=" + tokenFile,
		"WEFT_PROXY_IDENTITY_TRUST_DOMAIN=" + MeshTrustDomain,
		"WEFT_PROXY_POD_NAMESPACE=" + MeshNamespace,
		"WEFT_PROXY_POD_SERVICE_ACCOUNT=" + meshAccounts[side].ServiceAccount,
	}
}

// weftMTLSCommand is the weft pair with identity: both proxies obtain SVIDs from the harness's
// identity service, and the client side's static discovery marks the server endpoint with the
// server's identity, so traffic between the proxies is mTLS to the server proxy's port 4143.
func weftMTLSCommand(s ProxySpec) ([]string, []string, error) {
	args, env, err := weftCommand(s)
	if err != nil {
		return nil, nil, err
	}
	if s.Mesh == nil {
		return nil, nil, fmt.Errorf("weft-mtls needs the harness's identity service (ProxySpec.Mesh is nil)")
	}
	token := filepath.Join(s.Dir, "token")
	if err := writeProxyFile(token, []byte(meshAccounts[s.Side].Token), 0o600); err != nil {
		return nil, nil, err
	}
	env = append(env, meshEnv(s.Mesh, s.Side, token)...)
	if s.Side == ClientSide {
		doc, err := RenderStaticDiscovery(s.Upstream, s.Kind, s.Mesh.ServerIdentity)
		if err != nil {
			return nil, nil, err
		}
		path := filepath.Join(s.Dir, "discovery.yaml")
		if err := writeProxyFile(path, doc, 0o644); err != nil {
			return nil, nil, err
		}
		env = append(env, "WEFT_PROXY_STATIC_DISCOVERY="+path)
	}
	return args, env, nil
}

// writeProxyFile writes a file owned by ProxyUID (the proxies run as that uid).
func writeProxyFile(path string, b []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, b, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chown(path, ProxyUID, ProxyUID); err != nil {
		return fmt.Errorf("chown %s: %w", path, err)
	}
	return nil
}

// benchReviewer stands in for the Kubernetes TokenReview API (the benchmark has no cluster): it
// accepts exactly the benchmark's two fixed tokens and maps each to its ServiceAccount's
// username. It is the only stubbed part of the identity service.
type benchReviewer map[string]string

func newBenchReviewer() benchReviewer {
	r := benchReviewer{}
	for _, a := range meshAccounts {
		r[a.Token] = fmt.Sprintf("system:serviceaccount:%s:%s", MeshNamespace, a.ServiceAccount)
	}
	return r
}

// Review implements identity.TokenReviewer.
func (r benchReviewer) Review(_ context.Context, token string) (string, error) {
	u, ok := r[token]
	if !ok {
		return "", &identity.InvalidTokenError{Reason: "not one of the benchmark's tokens"}
	}
	return u, nil
}

// identityService is weft's identity service (package identity, the code behind
// `weft-controller identity --issuer-certificate-file … --issuer-key-file … --trust-anchors-file …`)
// running inside the harness process, with a fresh trust anchor and issuer made by internal/pki.
type identityService struct {
	// Addr is the gRPC address the proxies dial.
	Addr string
	// AnchorsFile holds the trust anchor (PEM), readable by every uid.
	AnchorsFile string
	cancel      context.CancelFunc
	done        chan error
	dir         string // removed by Close when set
}

// startIdentity writes a trust anchor and issuer into dir, starts the identity service on ip
// (port chosen by the kernel) and returns when it is ready to certify.
func startIdentity(ctx context.Context, ip netip.Addr, dir string, log *slog.Logger) (*identityService, error) {
	anchor, err := pki.NewTrustAnchor("root."+MeshTrustDomain, 0)
	if err != nil {
		return nil, fmt.Errorf("trust anchor: %w", err)
	}
	issuer, err := anchor.NewIssuer("identity.weft-bench."+MeshTrustDomain, 0)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	keyPEM, err := pki.EncodeKey(issuer.Key)
	if err != nil {
		return nil, fmt.Errorf("issuer key: %w", err)
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"issuer.crt", pki.EncodeCerts(issuer.Cert), 0o600},
		{"issuer.key", keyPEM, 0o600},
		{"ca-bundle.crt", pki.EncodeCerts(anchor.Cert), 0o644},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return nil, fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	srv, err := identity.New(identity.Config{
		Service: identity.ServiceConfig{
			TrustDomain: MeshTrustDomain,
			Reviewer:    newBenchReviewer(),
			Logger:      log,
		},
		Source: &identity.FileSource{
			IssuerCert:   filepath.Join(dir, "issuer.crt"),
			IssuerKey:    filepath.Join(dir, "issuer.key"),
			TrustAnchors: filepath.Join(dir, "ca-bundle.crt"),
			Logger:       log,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("identity service: %w", err)
	}
	lis, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		return nil, fmt.Errorf("identity listen: %w", err)
	}
	admin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		lis.Close()
		return nil, fmt.Errorf("identity admin listen: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &identityService{Addr: lis.Addr().String(), AnchorsFile: filepath.Join(dir, "ca-bundle.crt"), cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- srv.Serve(ctx, lis, admin) }()
	if err := waitHTTP200(ctx, http.DefaultClient, "http://"+admin.Addr().String()+"/ready"); err != nil {
		s.Close()
		return nil, fmt.Errorf("identity service: %w", err)
	}
	return s, nil
}

// Close stops the service (and removes its directory when it owns one).
func (s *identityService) Close() error {
	s.cancel()
	err := <-s.done
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
	return err
}

// waitHTTP200 polls url until it answers 200 (at most 10 s).
func waitHTTP200(ctx context.Context, c *http.Client, url string) error {
	deadline := time.Now().Add(10 * time.Second)
	var last string
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not 200 after 10s: %s", url, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
