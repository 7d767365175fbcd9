// Package annotations names every annotation and label weft reads or writes,
// in one place. docs/annotations.md documents them for users.
package annotations

// Set by users on namespaces, workloads or pods.
const (
	// Inject is "enabled" or "disabled" on a namespace or pod template; a
	// pod-level "disabled" wins over a namespace-level "enabled".
	Inject = "weft.io/inject"

	// Proxy configuration overrides (pod template or namespace).
	SkipInboundPorts     = "config.weft.io/skip-inbound-ports"
	SkipOutboundPorts    = "config.weft.io/skip-outbound-ports"
	SkipSubnets          = "config.weft.io/skip-subnets"
	OpaquePorts          = "config.weft.io/opaque-ports"
	ProxyCPURequest      = "config.weft.io/proxy-cpu-request"
	ProxyCPULimit        = "config.weft.io/proxy-cpu-limit"
	ProxyMemoryRequest   = "config.weft.io/proxy-memory-request"
	ProxyMemoryLimit     = "config.weft.io/proxy-memory-limit"
	ProxyLogLevel        = "config.weft.io/proxy-log-level"
	DefaultInboundPolicy = "config.weft.io/default-inbound-policy"
	ProxyImage           = "config.weft.io/proxy-image"
	ProxyVersionOverride = "config.weft.io/proxy-version"
	ShutdownGracePeriod  = "config.weft.io/shutdown-grace-period"
	NativeSidecar        = "config.weft.io/native-sidecar"
)

// Values of Inject.
const (
	Enabled  = "enabled"
	Disabled = "disabled"
)

// Written by the injector on injected pods.
const (
	// ProxyVersion marks a pod as meshed and names its proxy version.
	ProxyVersion = "weft.io/proxy-version"
	// TrustRootSHA256 is the SHA-256 of the trust anchors the proxy was
	// given, so a rotation shows which pods still need a restart.
	TrustRootSHA256 = "weft.io/trust-root-sha256"
	// InjectedBy records what injected the pod: "webhook" or "cli".
	InjectedBy = "weft.io/injected-by"
	// OriginalProbes holds the httpGet probes the injector pointed at the
	// proxy's admin port (pods whose inbound policy refuses plaintext), so
	// uninject can restore them.
	OriginalProbes = "weft.io/original-probes"
)

// Container and volume names the injector adds.
const (
	ProxyContainer   = "weft-proxy"
	InitContainer    = "weft-init"
	IdentityVolume   = "weft-identity"
	TokenVolume      = "weft-identity-token"
	ControlPlaneNS   = "weft.io/control-plane-ns"
	ControlPlaneComp = "weft.io/control-plane-component"
)
