package manifests

import (
	"fmt"
	"regexp"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/weftmesh/weft/injector"
	"github.com/weftmesh/weft/internal/version"
)

// Values are the settings of an install. `weft install` flags edit exactly
// this struct; Render turns it into manifests and stores it (without any
// private key) in the weft-config ConfigMap, where the injector reads the
// embedded injector.Values.
type Values struct {
	// Values are the proxy settings the injector applies to every pod.
	injector.Values

	// ControllerImage without tag, e.g. "weft/controller".
	ControllerImage string `json:"controllerImage"`
	// ControllerVersion is the controller image tag.
	ControllerVersion string `json:"controllerVersion"`
	// IdentityIssuanceLifetime of the certificates identity issues to proxies.
	IdentityIssuanceLifetime time.Duration `json:"identityIssuanceLifetime"`
	// HA runs ControllerReplicas of each component with pod anti-affinity
	// and PodDisruptionBudgets.
	HA bool `json:"ha"`
	// ControllerReplicas per component; 0 means 1, or 3 with HA.
	ControllerReplicas int32 `json:"controllerReplicas"`
	// WebhookFailurePolicy of the injector webhook: Ignore (a pod is created
	// unmeshed when the injector is down) or Fail (pod creation fails).
	WebhookFailurePolicy string `json:"webhookFailurePolicy"`
}

// Default resource settings of control-plane containers.
const (
	controllerCPURequest    = "100m"
	controllerMemoryRequest = "50Mi"
	controllerMemoryLimit   = "250Mi"
	haReplicas              = 3
)

// DefaultValues are the values of `weft install` without flags: images at
// this binary's version, namespace weft, failure policy Ignore.
func DefaultValues() Values {
	v := Values{
		Values:                   injector.DefaultValues(),
		ControllerImage:          "weft/controller",
		ControllerVersion:        version.Version,
		IdentityIssuanceLifetime: 24 * time.Hour,
		WebhookFailurePolicy:     "Ignore",
	}
	v.ProxyVersion = version.Version
	return v
}

// Replicas is the number of pods per control-plane component.
func (v *Values) Replicas() int32 {
	switch {
	case v.ControllerReplicas > 0:
		return v.ControllerReplicas
	case v.HA:
		return haReplicas
	}
	return 1
}

// dnsLabel is an RFC 1123 label (namespace names).
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// dnsName is an RFC 1123 subdomain (trust and cluster domains).
var dnsName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// Validate reports the first invalid value, naming it the way the CLI flag
// does.
func (v *Values) Validate() error {
	if err := v.Values.Validate(); err != nil {
		return err
	}
	if err := v.validateNamespace(); err != nil {
		return err
	}
	switch {
	case !dnsName.MatchString(v.TrustDomain):
		return fmt.Errorf("trust domain %q is not a DNS name", v.TrustDomain)
	case !dnsName.MatchString(v.ClusterDomain):
		return fmt.Errorf("cluster domain %q is not a DNS name", v.ClusterDomain)
	case v.ControllerImage == "":
		return fmt.Errorf("controller image is empty")
	case v.ControllerVersion == "":
		return fmt.Errorf("controller version is empty")
	case v.IdentityIssuanceLifetime < time.Minute:
		return fmt.Errorf("identity issuance lifetime %s is shorter than one minute", v.IdentityIssuanceLifetime)
	case v.ControllerReplicas < 0:
		return fmt.Errorf("controller replicas %d is negative", v.ControllerReplicas)
	case v.ShutdownGracePeriod <= 0:
		return fmt.Errorf("proxy shutdown grace period %s must be positive", v.ShutdownGracePeriod)
	}
	switch v.WebhookFailurePolicy {
	case "Ignore", "Fail":
	default:
		return fmt.Errorf("webhook failure policy %q is not Ignore or Fail", v.WebhookFailurePolicy)
	}
	for _, q := range []struct{ name, value string }{
		{"proxy cpu request", v.CPURequest}, {"proxy cpu limit", v.CPULimit},
		{"proxy memory request", v.MemoryRequest}, {"proxy memory limit", v.MemoryLimit},
	} {
		if q.value == "" {
			continue
		}
		if _, err := resource.ParseQuantity(q.value); err != nil {
			return fmt.Errorf("%s %q is not a Kubernetes quantity (e.g. 100m, 64Mi)", q.name, q.value)
		}
	}
	return nil
}

func (v *Values) validateNamespace() error {
	ns := v.ControlPlaneNamespace
	switch {
	case len(ns) > 63 || !dnsLabel.MatchString(ns):
		return fmt.Errorf("control plane namespace %q is not a valid namespace name (lowercase letters, digits and '-', at most 63)", ns)
	case ns == "kube-system" || ns == "kube-public" || ns == "default":
		return fmt.Errorf("control plane namespace %q is reserved; use a namespace of its own such as weft", ns)
	}
	return nil
}
