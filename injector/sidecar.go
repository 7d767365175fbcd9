package injector

import (
	"net/netip"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weftmesh/weft/internal/annotations"
)

func parseCIDR(s string) (netip.Prefix, error) { return netip.ParsePrefix(s) }

func ptr[T any](v T) *T { return &v }

// initContainer runs `weft-proxy init` with the pod's port settings. It is the
// only container with NET_ADMIN/NET_RAW, and it exits.
func initContainer(v Values, s podSettings) corev1.Container {
	inboundIgnore := append([]string{strconv.Itoa(TapPort), strconv.Itoa(AdminPort)}, s.skipIn...)
	args := []string{
		"init",
		"--incoming-proxy-port", strconv.Itoa(InboundPort),
		"--outgoing-proxy-port", strconv.Itoa(OutboundPort),
		"--proxy-uid", strconv.FormatInt(v.ProxyUID, 10),
		"--inbound-ports-to-ignore", strings.Join(inboundIgnore, ","),
	}
	if len(s.skipOut) > 0 {
		args = append(args, "--outbound-ports-to-ignore", strings.Join(s.skipOut, ","))
	}
	if len(s.skipSubnets) > 0 {
		args = append(args, "--subnets-to-ignore", strings.Join(s.skipSubnets, ","))
	}
	return corev1.Container{
		Name:  annotations.InitContainer,
		Image: s.image + ":" + s.version,
		Args:  args,
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr(int64(0)),
			RunAsNonRoot:             ptr(false),
			AllowPrivilegeEscalation: ptr(false),
			ReadOnlyRootFilesystem:   ptr(true),
			Capabilities: &corev1.Capabilities{
				Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
				Drop: []corev1.Capability{"ALL"},
			},
		},
		Resources: corev1.ResourceRequirements{},
	}
}

func proxyContainer(pod *corev1.Pod, v Values, s podSettings) corev1.Container {
	return corev1.Container{
		Name:  annotations.ProxyContainer,
		Image: s.image + ":" + s.version,
		Ports: []corev1.ContainerPort{
			{Name: "weft-proxy", ContainerPort: InboundPort, Protocol: corev1.ProtocolTCP},
			{Name: "weft-admin", ContainerPort: AdminPort, Protocol: corev1.ProtocolTCP},
		},
		Env:            proxyEnv(v, s),
		ReadinessProbe: readyProbe(2, 3),
		LivenessProbe: &corev1.Probe{
			ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/live", Port: intstr.FromInt32(AdminPort)}},
			InitialDelaySeconds: 10, PeriodSeconds: 10, FailureThreshold: 3, TimeoutSeconds: 1,
		},
		Resources: s.resources,
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr(v.ProxyUID),
			RunAsNonRoot:             ptr(true),
			AllowPrivilegeEscalation: ptr(false),
			ReadOnlyRootFilesystem:   ptr(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: annotations.IdentityVolume, MountPath: identityDir},
			{Name: annotations.TokenVolume, MountPath: tokenDir, ReadOnly: true},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}

func readyProbe(period, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(AdminPort)}},
		PeriodSeconds: period, FailureThreshold: failures, TimeoutSeconds: 1,
	}
}

// proxyEnv is the proxy's configuration (docs/proxy.md, docs/proxy-mtls.md).
func proxyEnv(v Values, s podSettings) []corev1.EnvVar {
	cp := v.ControlPlaneNamespace
	svc := func(name string, port int) string {
		return name + "." + cp + ".svc." + v.ClusterDomain + ":" + strconv.Itoa(port)
	}
	id := func(sa string) string { return "spiffe://" + v.TrustDomain + "/ns/" + cp + "/sa/" + sa }
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	env := []corev1.EnvVar{
		field("WEFT_PROXY_POD_NAME", "metadata.name"),
		field("WEFT_PROXY_POD_NAMESPACE", "metadata.namespace"),
		field("WEFT_PROXY_SERVICE_ACCOUNT", "spec.serviceAccountName"),
		field("WEFT_PROXY_POD_IP", "status.podIP"),
		{Name: "WEFT_PROXY_LOG_LEVEL", Value: s.logLevel},
		{Name: "WEFT_PROXY_INBOUND_LISTEN_ADDR", Value: "0.0.0.0:" + strconv.Itoa(InboundPort)},
		{Name: "WEFT_PROXY_OUTBOUND_LISTEN_ADDR", Value: "127.0.0.1:" + strconv.Itoa(OutboundPort)},
		{Name: "WEFT_PROXY_ADMIN_LISTEN_ADDR", Value: "0.0.0.0:" + strconv.Itoa(AdminPort)},
		{Name: "WEFT_PROXY_TAP_LISTEN_ADDR", Value: "0.0.0.0:" + strconv.Itoa(TapPort)},
		{Name: "WEFT_PROXY_TAP_AUTHORIZED_IDS", Value: "spiffe://" + v.TrustDomain + "/ns/" + VizNamespace + "/sa/" + VizServiceAccount},
		{Name: "WEFT_PROXY_INBOUND_PORTS_DISABLE_PROTOCOL_DETECTION", Value: joinPorts(s.opaque)},
		{Name: "WEFT_PROXY_OUTBOUND_PORTS_DISABLE_PROTOCOL_DETECTION", Value: joinPorts(v.OpaquePorts)},
		{Name: "WEFT_PROXY_SHUTDOWN_GRACE_PERIOD", Value: s.grace.String()},
		{Name: "WEFT_PROXY_INBOUND_DEFAULT_POLICY", Value: s.policy},
		{Name: "WEFT_PROXY_DESTINATION_SVC_ADDR", Value: svc("weft-destination", 8086)},
		{Name: "WEFT_PROXY_DESTINATION_SVC_NAME", Value: id("weft-destination")},
		{Name: "WEFT_PROXY_IDENTITY_SVC_ADDR", Value: svc("weft-identity", 8080)},
		{Name: "WEFT_PROXY_IDENTITY_SVC_NAME", Value: id("weft-identity")},
		{Name: "WEFT_PROXY_IDENTITY_TOKEN_FILE", Value: tokenDir + "/token"},
		{Name: "WEFT_PROXY_IDENTITY_DIR", Value: identityDir},
		{Name: "WEFT_PROXY_IDENTITY_TRUST_ANCHORS", Value: v.TrustAnchorsPEM},
		{Name: "WEFT_PROXY_IDENTITY_LOCAL_NAME", Value: "spiffe://" + v.TrustDomain + "/ns/$(WEFT_PROXY_POD_NAMESPACE)/sa/$(WEFT_PROXY_SERVICE_ACCOUNT)"},
	}
	return env
}

// identityVolumes are the in-memory directory for the proxy's key material
// and the projected token it proves its ServiceAccount with.
func identityVolumes() []corev1.Volume {
	return []corev1.Volume{
		{Name: annotations.IdentityVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		{Name: annotations.TokenVolume, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience: tokenAudience, ExpirationSeconds: ptr(int64(tokenSeconds)), Path: "token",
			}}},
		}}},
	}
}
