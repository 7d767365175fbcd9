package manifests

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weftmesh/weft/internal/annotations"
)

// component is one control-plane Deployment: its name (shared by its
// ServiceAccount and Service), the weft-controller subcommand and ports.
type component struct {
	name      string // weft-identity
	short     string // identity: container name and component label
	args      []string
	grpcName  string
	grpcPort  int32 // container port of the served API
	svcPort   int32 // Service port
	adminPort int32
	// podAnnotations configure the component's own proxy.
	podAnnotations map[string]string
	volumes        []corev1.Volume
	mounts         []corev1.VolumeMount
	// fsGroup makes mounted Secrets group-readable by the non-root
	// controller user (0 means none).
	fsGroup int64
}

// components are identity, destination and proxy-injector, in that order
// (identity first: nothing in the mesh starts without certificates).
func components(v *Values) []component {
	ns := v.ControlPlaneNamespace
	return []component{
		{
			name: IdentityName, short: "identity",
			args: []string{"identity",
				"--addr=:" + strconv.Itoa(identityGRPCPort),
				"--admin-addr=:" + strconv.Itoa(identityAdminPort),
				"--namespace=" + ns,
				"--service-account=" + IdentityName,
				"--trust-domain=" + v.TrustDomain,
				"--issuance-lifetime=" + v.IdentityIssuanceLifetime.String(),
				"--issuer-secret=" + IssuerSecretName,
				"--trust-anchors-configmap=" + TrustRootsName,
			},
			grpcName: "grpc", grpcPort: identityGRPCPort, svcPort: identityGRPCPort, adminPort: identityAdminPort,
			podAnnotations: map[string]string{
				// identity terminates its own TLS (proxies verify its SVID),
				// and its probes must not depend on its proxy, which cannot
				// have a certificate before identity serves.
				annotations.SkipInboundPorts: strconv.Itoa(identityGRPCPort) + "," + strconv.Itoa(identityAdminPort),
				// The Kubernetes API (issuer Secret, TokenReviews) is reached
				// directly, before the proxy is ready.
				annotations.SkipOutboundPorts: "443,6443",
				// The proxy must not hold identity's start: it waits for it.
				annotations.NativeSidecar: "false",
			},
		},
		{
			name: DestinationName, short: "destination",
			args: []string{"destination",
				"--addr=:" + strconv.Itoa(destinationGRPCPort),
				"--admin-addr=:" + strconv.Itoa(destinationAdmin),
				"--cluster-domain=" + v.ClusterDomain,
				"--trust-domain=" + v.TrustDomain,
			},
			// destination speaks plain gRPC; its proxy terminates mTLS.
			grpcName: "grpc", grpcPort: destinationGRPCPort, svcPort: destinationGRPCPort, adminPort: destinationAdmin,
			podAnnotations: map[string]string{},
		},
		{
			name: InjectorName, short: "proxy-injector",
			args: []string{"injector",
				"--namespace=" + ns,
				"--tls-cert-file=" + injectorTLSDir + "/tls.crt",
				"--tls-key-file=" + injectorTLSDir + "/tls.key",
			},
			grpcName: "webhook", grpcPort: injectorPort, svcPort: injectorServicePort, adminPort: injectorAdminPort,
			podAnnotations: map[string]string{
				// The apiserver calls the webhook with its own TLS.
				annotations.SkipInboundPorts: strconv.Itoa(injectorPort),
			},
			volumes: []corev1.Volume{{Name: "tls", VolumeSource: corev1.VolumeSource{
				Secret: &corev1.SecretVolumeSource{SecretName: InjectorTLSName, DefaultMode: ptr(int32(0o440))},
			}}},
			fsGroup: controllerUID,
			mounts:  []corev1.VolumeMount{{Name: "tls", MountPath: injectorTLSDir, ReadOnly: true}},
		},
	}
}

func ptr[T any](v T) *T { return &v }

// labels of every object of comp ("" for install-wide objects).
func labels(v *Values, short string) map[string]string {
	l := map[string]string{LabelControlPlaneNS: v.ControlPlaneNamespace, "app.kubernetes.io/part-of": "weft"}
	if short != "" {
		l[LabelComponent] = short
	}
	return l
}

// selector picks comp's pods.
func selector(v *Values, comp component) map[string]string {
	return map[string]string{LabelControlPlaneNS: v.ControlPlaneNamespace, LabelComponent: comp.short}
}

func adminProbe(path string, port int32, period, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: intstr.FromInt32(port), Scheme: corev1.URISchemeHTTP,
		}},
		PeriodSeconds: period, FailureThreshold: failures, TimeoutSeconds: 1, SuccessThreshold: 1,
	}
}
