package identity

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Defaults.
const (
	DefaultTokenFile      = "/var/run/secrets/weft.io/identity/token"
	DefaultServiceAddr    = "weft-identity.weft.svc.cluster.local:8080"
	DefaultServiceName    = "spiffe://cluster.local/ns/weft/sa/weft-identity"
	DefaultTrustDomain    = "cluster.local"
	DefaultRequestTimeout = 10 * time.Second
	DefaultBackoffMin     = 500 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
	DefaultPollInterval   = 10 * time.Second
	// RenewFraction of the remaining lifetime after which a certificate is
	// renewed (Linkerd's 70 %).
	RenewFraction = 0.7
)

// Config configures a Manager.
type Config struct {
	// LocalID is the proxy's own SPIFFE ID, spiffe://<td>/ns/<ns>/sa/<sa>.
	// Required.
	LocalID spiffeid.ID
	// TokenFile is the projected ServiceAccount token (audience
	// identity.weft.io), re-read before every request; "" means
	// DefaultTokenFile.
	TokenFile string
	// ServiceAddr is the identity service's host:port; "" means
	// DefaultServiceAddr.
	ServiceAddr string
	// ServiceID is the identity the identity service must present; the zero
	// value means DefaultServiceName.
	ServiceID spiffeid.ID
	// TrustAnchorsPEM holds one or more PEM root certificates of LocalID's
	// trust domain. One of TrustAnchorsPEM and TrustAnchorsFile is required.
	TrustAnchorsPEM []byte
	// TrustAnchorsFile is read at New when TrustAnchorsPEM is empty, then
	// polled every PollInterval and reloaded when it changes.
	TrustAnchorsFile string
	// PollInterval of TrustAnchorsFile; 0 means DefaultPollInterval.
	PollInterval time.Duration
	// RequestTimeout bounds one Certify call; 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// BackoffMin and BackoffMax bound the exponential back-off (with jitter)
	// between failed requests; 0 means DefaultBackoffMin / DefaultBackoffMax.
	BackoffMin, BackoffMax time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// WorkloadAPIAddr, when set by FromEnv, says the proxy should take its
	// SVIDs from a SPIFFE Workload API (NewWorkloadSource) instead of a
	// Manager; the other fields are then unset. New ignores it.
	WorkloadAPIAddr string
}

// Environment variables FromEnv reads.
const (
	EnvDisabled          = "WEFT_PROXY_IDENTITY_DISABLED"
	EnvTokenFile         = "WEFT_PROXY_IDENTITY_TOKEN_FILE"
	EnvServiceAddr       = "WEFT_PROXY_IDENTITY_SVC_ADDR"
	EnvServiceName       = "WEFT_PROXY_IDENTITY_SVC_NAME"
	EnvTrustAnchors      = "WEFT_PROXY_IDENTITY_TRUST_ANCHORS"
	EnvTrustAnchorsFile  = "WEFT_PROXY_IDENTITY_TRUST_ANCHORS_FILE"
	EnvLocalName         = "WEFT_PROXY_IDENTITY_LOCAL_NAME"
	EnvTrustDomain       = "WEFT_PROXY_IDENTITY_TRUST_DOMAIN"
	EnvPodNamespace      = "WEFT_PROXY_POD_NAMESPACE"
	EnvPodServiceAccount = "WEFT_PROXY_POD_SERVICE_ACCOUNT"
)

// ErrDisabled is returned by FromEnv when WEFT_PROXY_IDENTITY_DISABLED is
// true: the proxy runs without identity (plaintext between proxies).
var ErrDisabled = errors.New("identity disabled")

// FromEnv builds a Config from the WEFT_PROXY_IDENTITY_* variables read with
// getenv (os.Getenv when nil). It returns ErrDisabled when identity is
// disabled. Every other error names the variable at fault.
func FromEnv(getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := getenv(EnvDisabled); v != "" {
		off, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("%s: %q is not a boolean", EnvDisabled, v)
		}
		if off {
			return Config{}, ErrDisabled
		}
	}
	if v := getenv(EnvWorkloadAPIAddr); v != "" {
		return Config{WorkloadAPIAddr: v}, nil
	}
	c := Config{
		TokenFile:        getenv(EnvTokenFile),
		ServiceAddr:      getenv(EnvServiceAddr),
		TrustAnchorsPEM:  []byte(getenv(EnvTrustAnchors)),
		TrustAnchorsFile: getenv(EnvTrustAnchorsFile),
	}
	if v := getenv(EnvServiceName); v != "" {
		id, err := spiffeid.FromString(v)
		if err != nil {
			return Config{}, fmt.Errorf("%s: %q: %w", EnvServiceName, v, err)
		}
		c.ServiceID = id
	}
	if v := getenv(EnvLocalName); v != "" {
		id, err := spiffeid.FromString(v)
		if err != nil {
			return Config{}, fmt.Errorf("%s: %q: %w", EnvLocalName, v, err)
		}
		c.LocalID = id
	} else {
		tdName := getenv(EnvTrustDomain)
		if tdName == "" {
			tdName = DefaultTrustDomain
		}
		td, err := spiffeid.TrustDomainFromString(tdName)
		if err != nil {
			return Config{}, fmt.Errorf("%s: %q: %w", EnvTrustDomain, tdName, err)
		}
		ns, sa := getenv(EnvPodNamespace), getenv(EnvPodServiceAccount)
		if ns == "" || sa == "" {
			return Config{}, fmt.Errorf("identity: set %s, or %s and %s (or %s=true)", EnvLocalName, EnvPodNamespace, EnvPodServiceAccount, EnvDisabled)
		}
		id, err := spiffeid.FromSegments(td, "ns", ns, "sa", sa)
		if err != nil {
			return Config{}, fmt.Errorf("%s/%s: %q/%q: %w", EnvPodNamespace, EnvPodServiceAccount, ns, sa, err)
		}
		c.LocalID = id
	}
	if len(strings.TrimSpace(string(c.TrustAnchorsPEM))) == 0 {
		c.TrustAnchorsPEM = nil
		if c.TrustAnchorsFile == "" {
			return Config{}, fmt.Errorf("identity: set %s or %s", EnvTrustAnchors, EnvTrustAnchorsFile)
		}
	}
	return c, nil
}
