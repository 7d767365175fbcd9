package manifests

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiregv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/weftmesh/weft/injector"
)

// The tap API (viz/tap): an aggregated API the Kubernetes API server
// reaches at the viz Service's tap port, over TLS it verifies with the
// APIService's caBundle.
const (
	TapGroup   = "tap.weft.io"
	TapVersion = "v1alpha1"
	// TapClusterRole is what users are bound to for `weft viz tap` and `top`.
	TapClusterRole = "weft-viz-tap"
	// VizTapTLSName is the Secret with the tap API's serving certificate.
	VizTapTLSName   = "weft-viz-tap-tls"
	vizTapPort      = 8089
	vizTapSvcPort   = 443
	vizTapTLSDir    = "/var/run/weft/tap-tls"
	vizTokenDir     = "/var/run/secrets/weft.io/viz-identity"
	identityTokenAu = "identity.weft.io"
)

// TapResources are the <resource>/tap names RBAC checks; weft-viz-tap
// grants watch on all of them.
var TapResources = []string{"namespaces/tap", "pods/tap", "deployments/tap", "statefulsets/tap", "daemonsets/tap", "jobs/tap", "services/tap"}

// VizCerts is the tap API's serving certificate and the CA the API server
// trusts it with (the APIService's caBundle).
type VizCerts struct {
	CAPEM, CertPEM, KeyPEM []byte
}

// TapCertHashAnnotation on the viz pod template is the SHA-256 of the
// serving certificate.
const TapCertHashAnnotation = "viz.weft.io/tap-tls-sha256"

func (c *VizCerts) hash() string {
	sum := sha256.Sum256(c.CertPEM)
	return hex.EncodeToString(sum[:])
}

// NewVizCerts generates the tap API's serving certificate with gen's
// Webhook, the same generator as the injector's webhook certificate.
func NewVizCerts(gen Generator) (*VizCerts, error) {
	svc := VizName + "." + VizNamespace + ".svc"
	ca, cert, key, err := gen.Webhook([]string{svc})
	if err != nil {
		return nil, err
	}
	return &VizCerts{CAPEM: ca, CertPEM: cert, KeyPEM: key}, nil
}

func rbacTypeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: kind}
}

// vizTapObjects are the tap API's objects besides the Deployment's changes:
// the serving Secret, RBAC and the APIService (last: nothing routes to the
// Service before it exists).
func vizTapObjects(v *VizValues, c *VizCerts) (pre, post []object) {
	sa := []rbacv1.Subject{{Kind: "ServiceAccount", Name: VizName, Namespace: VizNamespace}}
	delegatorName := VizName + "-auth-delegator"
	secret := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: vizMeta(VizTapTLSName),
		Type:       corev1.SecretTypeTLS,
		StringData: map[string]string{corev1.TLSCertKey: string(c.CertPEM), corev1.TLSPrivateKeyKey: string(c.KeyPEM), "ca.crt": string(c.CAPEM)},
	}
	pre = []object{
		// Users are bound to this role to tap; nothing is bound by install.
		&rbacv1.ClusterRole{TypeMeta: rbacTypeMeta("ClusterRole"), ObjectMeta: metav1.ObjectMeta{Name: TapClusterRole, Labels: vizLabels()},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{TapGroup}, Resources: TapResources, Verbs: []string{"watch"}}}},
		// SubjectAccessReviews for each tap request.
		&rbacv1.ClusterRoleBinding{TypeMeta: rbacTypeMeta("ClusterRoleBinding"), ObjectMeta: metav1.ObjectMeta{Name: delegatorName, Labels: vizLabels()},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:auth-delegator"},
			Subjects: sa},
		// The front-proxy CA and allowed names (extension-apiserver-authentication).
		&rbacv1.RoleBinding{TypeMeta: rbacTypeMeta("RoleBinding"),
			ObjectMeta: metav1.ObjectMeta{Name: VizName + "-auth-reader", Namespace: "kube-system", Labels: vizLabels()},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "extension-apiserver-authentication-reader"},
			Subjects:   sa},
		secret,
	}
	post = []object{&apiregv1.APIService{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apiregistration.k8s.io/v1", Kind: "APIService"},
		ObjectMeta: metav1.ObjectMeta{Name: TapVersion + "." + TapGroup, Labels: vizLabels()},
		Spec: apiregv1.APIServiceSpec{
			Service:              &apiregv1.ServiceReference{Namespace: VizNamespace, Name: VizName, Port: ptr(int32(vizTapSvcPort))},
			Group:                TapGroup,
			Version:              TapVersion,
			CABundle:             c.CAPEM,
			GroupPriorityMinimum: 1000,
			VersionPriority:      100,
		},
	}}
	return pre, post
}

// vizTapRules are the cluster-wide reads tap needs besides the window's
// pods and services: resolving a workload to its pods, and the control
// plane's install values (trust domain, anchors, where identity runs) to
// obtain the component's own certificate — only ConfigMaps named
// weft-config, in whichever namespace weft is installed (a Role there would
// make the apply fail while weft is elsewhere).
func vizTapRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets"}, Verbs: []string{"get"}},
		{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{ConfigName}, Verbs: []string{"get"}},
	}
}

// vizTapPod adds the tap API to the viz container and pod: its port, the
// serving Secret and the projected token the component proves its
// ServiceAccount with to the identity service.
func vizTapPod(v *VizValues, spec *corev1.PodSpec, c *corev1.Container) {
	c.Args = append(c.Args,
		"--tap-addr=:"+strconv.Itoa(vizTapPort),
		"--tap-tls-cert-file="+vizTapTLSDir+"/"+corev1.TLSCertKey,
		"--tap-tls-key-file="+vizTapTLSDir+"/"+corev1.TLSPrivateKeyKey,
		"--weft-namespace="+v.ControlPlaneNamespace,
		"--identity-token-file="+vizTokenDir+"/token",
	)
	c.Ports = append(c.Ports, corev1.ContainerPort{Name: "tap", ContainerPort: vizTapPort, Protocol: corev1.ProtocolTCP})
	c.VolumeMounts = append(c.VolumeMounts,
		corev1.VolumeMount{Name: "tap-tls", MountPath: vizTapTLSDir, ReadOnly: true},
		corev1.VolumeMount{Name: "identity-token", MountPath: vizTokenDir, ReadOnly: true},
	)
	spec.Volumes = append(spec.Volumes,
		corev1.Volume{Name: "tap-tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: VizTapTLSName, DefaultMode: ptr(int32(0o440))}}},
		corev1.Volume{Name: "identity-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience: identityTokenAu, ExpirationSeconds: ptr(int64(24 * 60 * 60)), Path: "token",
			}}},
		}}},
	)
	// The non-root controller user reads the mounted Secret through its group.
	spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr(int64(controllerUID))}
}

// vizTapPorts: the API server reaches the tap API with its own TLS (the
// proxy's inbound redirect skips it); tap dials each proxy's tap port and
// the identity service with the component's own mTLS, not through its proxy.
func vizTapPorts() (skipIn, skipOut string) {
	return strconv.Itoa(vizTapPort), strconv.Itoa(injector.TapPort) + "," + strconv.Itoa(proxyAdminPort) + "," + strconv.Itoa(identityGRPCPort)
}
