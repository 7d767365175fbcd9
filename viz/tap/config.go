package tap

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/weftmesh/weft/injector"
	"github.com/weftmesh/weft/proxy/identity"
)

// The API server publishes its front-proxy configuration here.
const (
	AuthnNamespace = "kube-system"
	AuthnConfigMap = "extension-apiserver-authentication"
)

// LoadRequestHeader reads the front-proxy CA, allowed names and header
// names the API server publishes for extension API servers.
func LoadRequestHeader(ctx context.Context, cs kubernetes.Interface) (*RequestHeader, error) {
	cm, err := cs.CoreV1().ConfigMaps(AuthnNamespace).Get(ctx, AuthnConfigMap, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read ConfigMap %s/%s: %w", AuthnNamespace, AuthnConfigMap, err)
	}
	return ParseRequestHeader(cm.Data)
}

// ParseRequestHeader reads the extension-apiserver-authentication data.
func ParseRequestHeader(data map[string]string) (*RequestHeader, error) {
	caPEM := data["requestheader-client-ca-file"]
	if strings.TrimSpace(caPEM) == "" {
		return nil, fmt.Errorf("ConfigMap %s/%s has no requestheader-client-ca-file: start kube-apiserver with --requestheader-client-ca-file", AuthnNamespace, AuthnConfigMap)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		return nil, fmt.Errorf("ConfigMap %s/%s: requestheader-client-ca-file holds no PEM certificate", AuthnNamespace, AuthnConfigMap)
	}
	rh := &RequestHeader{CAs: pool}
	for key, dst := range map[string]*[]string{
		"requestheader-allowed-names":    &rh.AllowedNames,
		"requestheader-username-headers": &rh.UserHeaders,
		"requestheader-group-headers":    &rh.GroupHeaders,
	} {
		if v := data[key]; v != "" {
			if err := json.Unmarshal([]byte(v), dst); err != nil {
				return nil, fmt.Errorf("ConfigMap %s/%s: %s: %w", AuthnNamespace, AuthnConfigMap, key, err)
			}
		}
	}
	return rh, nil
}

// IdentityConfig says where the component's own certificate comes from.
type IdentityConfig struct {
	Client kubernetes.Interface
	// ControlPlaneNamespace holds weft-config (trust domain, anchors,
	// cluster domain); the identity service runs there.
	ControlPlaneNamespace string
	// Namespace and ServiceAccount of the component: its SPIFFE ID.
	Namespace, ServiceAccount string
	// TokenFile is the projected token with audience identity.weft.io.
	TokenFile string
	// ServiceAddr of the identity service; "" means its Service,
	// weft-identity.<ControlPlaneNamespace>.svc.<cluster domain>:8080.
	ServiceAddr string
	// AnchorsPoll is how often weft-config's trust anchors are re-read; 0
	// means DefaultAnchorsPoll.
	AnchorsPoll time.Duration
	Logger      *slog.Logger
}

// IdentityFromConfigMap returns a Config.Identity that reads weft-config and
// runs a proxy/identity Manager — what every proxy runs — for the
// component's ServiceAccount, until ctx ends. It returns at once; until the
// first certificate is issued the source's GetX509SVID says why not.
func IdentityFromConfigMap(ic IdentityConfig) func(ctx context.Context) (*MTLSSource, error) {
	return func(ctx context.Context) (*MTLSSource, error) {
		v, err := ic.values(ctx)
		if err != nil {
			return nil, err
		}
		td, err := spiffeid.TrustDomainFromString(v.TrustDomain)
		if err != nil {
			return nil, fmt.Errorf("weft-config trust domain %q: %w", v.TrustDomain, err)
		}
		local, err := spiffeid.FromSegments(td, "ns", ic.Namespace, "sa", ic.ServiceAccount)
		if err != nil {
			return nil, fmt.Errorf("component identity: %w", err)
		}
		svc, err := spiffeid.FromSegments(td, "ns", v.ControlPlaneNamespace, "sa", "weft-identity")
		if err != nil {
			return nil, fmt.Errorf("identity service identity: %w", err)
		}
		addr := ic.ServiceAddr
		if addr == "" {
			addr = "weft-identity." + v.ControlPlaneNamespace + ".svc." + v.ClusterDomain + ":8080"
		}
		m, err := identity.New(identity.Config{
			LocalID:         local,
			TokenFile:       ic.TokenFile,
			ServiceAddr:     addr,
			ServiceID:       svc,
			TrustAnchorsPEM: []byte(v.TrustAnchorsPEM),
			Logger:          ic.Logger,
		})
		if err != nil {
			return nil, err
		}
		m.Start(ctx)
		go ic.followAnchors(ctx, m, v.TrustAnchorsPEM)
		return &MTLSSource{SVIDs: m, Bundle: m, TrustDomain: v.TrustDomain}, nil
	}
}

func (ic IdentityConfig) values(ctx context.Context) (*injector.Values, error) {
	cm, err := ic.Client.CoreV1().ConfigMaps(ic.ControlPlaneNamespace).Get(ctx, "weft-config", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read weft-config in %s (is weft installed there? pass weft viz install --weft-namespace): %w", ic.ControlPlaneNamespace, err)
	}
	var v injector.Values
	if err := json.Unmarshal([]byte(cm.Data[injector.ValuesKey]), &v); err != nil {
		return nil, fmt.Errorf("parse weft-config %q: %w", injector.ValuesKey, err)
	}
	return &v, nil
}

// DefaultAnchorsPoll is how often the trust anchors are re-read.
const DefaultAnchorsPoll = time.Minute

// followAnchors gives m the anchors of weft-config whenever they change
// (a rotation by weft upgrade), as every proxy's anchors follow theirs.
func (ic IdentityConfig) followAnchors(ctx context.Context, m *identity.Manager, current string) {
	every := ic.AnchorsPoll
	if every <= 0 {
		every = DefaultAnchorsPoll
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v, err := ic.values(ctx)
		if err != nil || v.TrustAnchorsPEM == current {
			continue
		}
		if err := m.SetTrustAnchors([]byte(v.TrustAnchorsPEM)); err != nil {
			if ic.Logger != nil {
				ic.Logger.Warn("tap: new trust anchors in weft-config refused", "err", err)
			}
			continue
		}
		current = v.TrustAnchorsPEM
	}
}
