package injector

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/weftmesh/weft/internal/annotations"
)

// Proxy ports and paths (docs/development.md).
const (
	InboundPort  = 4143
	OutboundPort = 4140
	AdminPort    = 4191
	TapPort      = 4190

	// VizNamespace and VizServiceAccount name the viz tap component, the
	// only identity a proxy's tap server accepts (WEFT_PROXY_TAP_AUTHORIZED_IDS).
	VizNamespace      = "weft-viz"
	VizServiceAccount = "weft-viz"

	identityDir   = "/var/run/weft/identity"
	tokenDir      = "/var/run/secrets/weft.io/identity"
	tokenAudience = "identity.weft.io"
	tokenSeconds  = 24 * 60 * 60
)

// Report says what Inject did to a pod.
type Report struct {
	// OpaquePorts the proxy treats as opaque (empty when none).
	OpaquePorts []uint16
	// NativeSidecar is true when the proxy runs as a native sidecar (an init
	// container with restartPolicy Always); false for the legacy first-container mode.
	NativeSidecar bool
}

// Inject adds the proxy to pod in place: the weft-init container running
// `weft-proxy init`, the proxy (as a native sidecar unless the pod says
// config.weft.io/native-sidecar: "false"), the identity volumes and the
// weft.io annotations. Per-pod overrides come from the pod's config.weft.io
// annotations (see MergeNamespaceConfig for namespace-level ones). It fails
// without changing the pod when an annotation is invalid, naming it.
func Inject(pod *corev1.Pod, v Values) (*Report, error) {
	if err := v.Validate(); err != nil {
		return nil, fmt.Errorf("injector values: %w", err)
	}
	cfg, err := podConfig(pod, v)
	if err != nil {
		return nil, err
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	// The pod's own grace period bounds everything; the proxy drains within it
	// and the pod spec is left as the user wrote it.
	podGrace := 30 * time.Second // Kubernetes' default
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		podGrace = time.Duration(*g) * time.Second
	}
	cfg.grace = min(cfg.grace, podGrace)
	var appProbes string
	if cfg.policy == "all-authenticated" {
		rewritten := pod.DeepCopy() // all or nothing
		if appProbes, err = rewriteProbes(rewritten); err != nil {
			return nil, err
		}
		*pod = *rewritten
	}
	proxy := proxyContainer(pod, v, cfg)
	if appProbes != "" {
		proxy.Env = append(proxy.Env, corev1.EnvVar{Name: "WEFT_PROXY_APP_PROBES", Value: appProbes})
	}
	init := initContainer(v, cfg)
	if cfg.native {
		always := corev1.ContainerRestartPolicyAlways
		proxy.RestartPolicy = &always
		proxy.StartupProbe = readyProbe(1, 120)
		pod.Spec.InitContainers = append([]corev1.Container{init, proxy}, pod.Spec.InitContainers...)
	} else {
		// Legacy mode: the proxy is the first container and its postStart
		// hook holds the next container until the proxy is ready.
		proxy.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{
			Exec: &corev1.ExecAction{Command: []string{"/weft-proxy", "await", "--timeout", "2m"}},
		}}
		pod.Spec.InitContainers = append([]corev1.Container{init}, pod.Spec.InitContainers...)
		pod.Spec.Containers = append([]corev1.Container{proxy}, pod.Spec.Containers...)
	}
	pod.Spec.Volumes = append(pod.Spec.Volumes, identityVolumes()...)
	pod.Annotations[annotations.ProxyVersion] = cfg.version
	pod.Annotations[annotations.TrustRootSHA256] = v.TrustRootHash()
	return &Report{OpaquePorts: cfg.opaque, NativeSidecar: cfg.native}, nil
}

// podSettings are the values after the pod's annotations are applied.
type podSettings struct {
	image, version, logLevel, policy string
	skipIn, skipOut                  []string
	skipSubnets                      []string
	opaque                           []uint16
	grace                            time.Duration
	native                           bool
	resources                        corev1.ResourceRequirements
}

func podConfig(pod *corev1.Pod, v Values) (podSettings, error) {
	a := pod.Annotations
	s := podSettings{
		image: v.ProxyImage, version: v.ProxyVersion, logLevel: v.LogLevel, policy: v.DefaultInboundPolicy,
		grace: v.ShutdownGracePeriod, native: true,
	}
	set := func(key string, dst *string) {
		if val, ok := a[key]; ok && val != "" {
			*dst = val
		}
	}
	set(annotations.ProxyImage, &s.image)
	set(annotations.ProxyVersionOverride, &s.version)
	set(annotations.ProxyLogLevel, &s.logLevel)
	set(annotations.DefaultInboundPolicy, &s.policy)
	if err := validLogLevel(s.logLevel); err != nil {
		return s, fmt.Errorf("annotation %s: %w", annotations.ProxyLogLevel, err)
	}
	if s.policy != "all-unauthenticated" && s.policy != "all-authenticated" {
		return s, fmt.Errorf("annotation %s: %q is not all-unauthenticated or all-authenticated", annotations.DefaultInboundPolicy, s.policy)
	}
	var err error
	if s.skipIn, err = portList(a, annotations.SkipInboundPorts); err != nil {
		return s, err
	}
	if s.skipOut, err = portList(a, annotations.SkipOutboundPorts); err != nil {
		return s, err
	}
	if s.skipSubnets, err = subnetList(a[annotations.SkipSubnets]); err != nil {
		return s, err
	}
	if s.opaque, err = opaquePorts(pod, v); err != nil {
		return s, err
	}
	if g, ok := a[annotations.ShutdownGracePeriod]; ok {
		if s.grace, err = time.ParseDuration(g); err != nil || s.grace <= 0 {
			return s, fmt.Errorf("annotation %s: %q is not a positive duration", annotations.ShutdownGracePeriod, g)
		}
	}
	if n, ok := a[annotations.NativeSidecar]; ok {
		if s.native, err = strconv.ParseBool(n); err != nil {
			return s, fmt.Errorf("annotation %s: %q is not true or false", annotations.NativeSidecar, n)
		}
	}
	s.resources, err = resources(a, v)
	return s, err
}

func portList(a map[string]string, key string) ([]string, error) {
	raw := strings.TrimSpace(a[key])
	if raw == "" {
		return nil, nil
	}
	var out []string
	for _, item := range strings.Split(raw, ",") {
		item = strings.TrimSpace(item)
		if _, _, err := parsePortRange(item); err != nil {
			return nil, fmt.Errorf("annotation %s: %w", key, err)
		}
		out = append(out, item)
	}
	return out, nil
}

func parsePortRange(item string) (uint16, uint16, error) {
	lo, hi, isRange := strings.Cut(item, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil || a == 0 {
		return 0, 0, fmt.Errorf("%q is not a port (1-65535) or a range", item)
	}
	if !isRange {
		return uint16(a), uint16(a), nil
	}
	b, err := strconv.ParseUint(hi, 10, 16)
	if err != nil || b < a {
		return 0, 0, fmt.Errorf("%q is not a valid port range", item)
	}
	return uint16(a), uint16(b), nil
}

func subnetList(raw string) ([]string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, nil
	}
	var out []string
	for _, item := range strings.Split(raw, ",") {
		item = strings.TrimSpace(item)
		if _, err := parseCIDR(item); err != nil {
			return nil, fmt.Errorf("annotation %s: %q is not a CIDR: %w", annotations.SkipSubnets, item, err)
		}
		out = append(out, item)
	}
	return out, nil
}

// opaquePorts is the pod's annotation if set, else the default
// server-speaks-first list intersected with the pod's container ports.
func opaquePorts(pod *corev1.Pod, v Values) ([]uint16, error) {
	if raw, ok := pod.Annotations[annotations.OpaquePorts]; ok {
		var out []uint16
		for _, item := range strings.Split(raw, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			lo, hi, err := parsePortRange(item)
			if err != nil {
				return nil, fmt.Errorf("annotation %s: %w", annotations.OpaquePorts, err)
			}
			for p := uint32(lo); p <= uint32(hi); p++ {
				out = append(out, uint16(p))
			}
		}
		return out, nil
	}
	var out []uint16
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			for _, p := range c.Ports {
				if port := uint16(p.ContainerPort); slices.Contains(v.OpaquePorts, port) && !slices.Contains(out, port) {
					out = append(out, port)
				}
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

func resources(a map[string]string, v Values) (corev1.ResourceRequirements, error) {
	r := corev1.ResourceRequirements{Requests: corev1.ResourceList{}, Limits: corev1.ResourceList{}}
	for _, f := range []struct {
		key  string
		def  string
		name corev1.ResourceName
		list corev1.ResourceList
	}{
		{annotations.ProxyCPURequest, v.CPURequest, corev1.ResourceCPU, r.Requests},
		{annotations.ProxyCPULimit, v.CPULimit, corev1.ResourceCPU, r.Limits},
		{annotations.ProxyMemoryRequest, v.MemoryRequest, corev1.ResourceMemory, r.Requests},
		{annotations.ProxyMemoryLimit, v.MemoryLimit, corev1.ResourceMemory, r.Limits},
	} {
		val := f.def
		if s, ok := a[f.key]; ok {
			val = s
		}
		if val == "" {
			continue
		}
		q, err := resource.ParseQuantity(val)
		if err != nil {
			return r, fmt.Errorf("annotation %s: %q is not a quantity: %w", f.key, val, err)
		}
		f.list[f.name] = q
	}
	if len(r.Limits) == 0 {
		r.Limits = nil
	}
	if len(r.Requests) == 0 {
		r.Requests = nil
	}
	return r, nil
}

// joinPorts renders a port list for the proxy's environment; an empty list
// is "none" (an empty value would mean the proxy's defaults).
func joinPorts(ps []uint16) string {
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ",")
}

// MergeNamespaceConfig copies the namespace's config.weft.io annotations onto
// the pod where the pod sets none of its own.
func MergeNamespaceConfig(pod *corev1.Pod, nsAnnotations map[string]string) {
	for k, val := range nsAnnotations {
		if !strings.HasPrefix(k, "config.weft.io/") {
			continue
		}
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		if _, ok := pod.Annotations[k]; !ok {
			pod.Annotations[k] = val
		}
	}
}
