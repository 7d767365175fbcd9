// Package injector adds weft's proxy to pods: the decision whether a pod is
// injected, the mutation itself (init container, proxy sidecar, volumes,
// annotations) and the admission webhook that applies it. `weft inject
// --manual` runs the same Inject function.
package injector

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Values are the install-time settings injection uses. weft install renders
// them into the weft-config ConfigMap; the webhook reads them from there.
type Values struct {
	// ProxyImage without tag, e.g. "weft/proxy".
	ProxyImage string `json:"proxyImage"`
	// ProxyVersion is the image tag and the weft.io/proxy-version value.
	ProxyVersion string `json:"proxyVersion"`
	// LogLevel of the proxy: debug, info, warn, error.
	LogLevel string `json:"logLevel"`
	// DefaultInboundPolicy: all-unauthenticated or all-authenticated.
	DefaultInboundPolicy string `json:"defaultInboundPolicy"`
	// ControlPlaneNamespace where destination and identity run.
	ControlPlaneNamespace string `json:"controlPlaneNamespace"`
	// ClusterDomain and TrustDomain.
	ClusterDomain string `json:"clusterDomain"`
	TrustDomain   string `json:"trustDomain"`
	// TrustAnchorsPEM is the trust bundle given to every proxy.
	TrustAnchorsPEM string `json:"trustAnchorsPEM"`
	// ShutdownGracePeriod of the proxy.
	ShutdownGracePeriod time.Duration `json:"shutdownGracePeriod"`
	// ProxyUID the proxy runs as; iptables exempts its traffic.
	ProxyUID int64 `json:"proxyUID"`
	// Resources of the proxy container ("" leaves a field unset).
	CPURequest    string `json:"cpuRequest"`
	CPULimit      string `json:"cpuLimit"`
	MemoryRequest string `json:"memoryRequest"`
	MemoryLimit   string `json:"memoryLimit"`
	// OpaquePorts is the default server-speaks-first list; a pod gets the
	// intersection with its container ports unless it annotates its own.
	OpaquePorts []uint16 `json:"opaquePorts"`
}

// DefaultValues are the values of a default install.
func DefaultValues() Values {
	return Values{
		ProxyImage:            "weft/proxy",
		ProxyVersion:          "dev",
		LogLevel:              "info",
		DefaultInboundPolicy:  "all-unauthenticated",
		ControlPlaneNamespace: "weft",
		ClusterDomain:         "cluster.local",
		TrustDomain:           "cluster.local",
		ShutdownGracePeriod:   30 * time.Second,
		ProxyUID:              2102,
		CPURequest:            "10m",
		MemoryRequest:         "20Mi",
		MemoryLimit:           "250Mi",
		OpaquePorts:           []uint16{25, 587, 3306, 4444, 5432, 6379, 9300, 11211},
	}
}

// Validate reports the first invalid value, naming it.
func (v *Values) Validate() error {
	switch {
	case v.ProxyImage == "":
		return fmt.Errorf("proxy image is empty")
	case v.ProxyVersion == "":
		return fmt.Errorf("proxy version is empty")
	case v.ControlPlaneNamespace == "":
		return fmt.Errorf("control plane namespace is empty")
	case v.ProxyUID <= 0:
		return fmt.Errorf("proxy uid %d must be positive", v.ProxyUID)
	}
	switch v.DefaultInboundPolicy {
	case "all-unauthenticated", "all-authenticated":
	default:
		return fmt.Errorf("default inbound policy %q is not all-unauthenticated or all-authenticated", v.DefaultInboundPolicy)
	}
	return validLogLevel(v.LogLevel)
}

func validLogLevel(l string) error {
	switch l {
	case "debug", "info", "warn", "error":
		return nil
	}
	return fmt.Errorf("log level %q is not one of debug, info, warn, error", l)
}

// TrustRootHash is the hex SHA-256 of the trust anchors.
func (v *Values) TrustRootHash() string {
	sum := sha256.Sum256([]byte(v.TrustAnchorsPEM))
	return hex.EncodeToString(sum[:])
}
