package manifests

import (
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weftmesh/weft/injector"
	"github.com/weftmesh/weft/internal/annotations"
	"github.com/weftmesh/weft/internal/version"
	"github.com/weftmesh/weft/viz/promsource"
)

// Names of the viz extension's objects. Its namespace and ServiceAccount are
// the ones the injector authorises to tap proxies; the Service is the one
// `weft viz stat` reaches through the API server's service proxy
// (viz/metricsapi.Namespace, ServiceName).
const (
	VizNamespace = injector.VizNamespace
	VizName      = injector.VizServiceAccount
	// LabelExtension marks every object of an extension ("viz").
	LabelExtension = "weft.io/extension"
)

// Viz ports (viz/metricsapi.Port, AdminAddrPort) and the proxies' admin
// port it scrapes.
const (
	vizAPIPort       = 8084
	vizAdminPort     = 9994
	proxyAdminPort   = 4191
	vizCPURequest    = "100m"
	vizMemoryRequest = "64Mi"
	vizMemoryLimit   = "512Mi"
)

// VizValues are the settings of `weft viz install`; its flags edit this
// struct.
type VizValues struct {
	// ControllerImage without tag and ControllerVersion, its tag: the viz
	// Deployment runs `weft-controller viz`.
	ControllerImage   string `json:"controllerImage"`
	ControllerVersion string `json:"controllerVersion"`
	// ScrapeInterval between scrapes of every proxy (the window's
	// resolution); Window is how far back the window reaches.
	ScrapeInterval time.Duration `json:"scrapeInterval"`
	Window         time.Duration `json:"window"`
	// CPURequest, MemoryRequest and MemoryLimit of the viz container.
	CPURequest    string `json:"cpuRequest"`
	MemoryRequest string `json:"memoryRequest"`
	MemoryLimit   string `json:"memoryLimit"`
	// PrometheusURL, when set, makes the viz API answer from that
	// Prometheus (which must scrape the proxies, see
	// `weft viz prometheus scrape-config`) instead of its own window.
	PrometheusURL string `json:"prometheusURL,omitempty"`
	// ControlPlaneNamespace is where weft is installed (--weft-namespace):
	// tap reads its weft-config there and asks its identity service for the
	// component's certificate.
	ControlPlaneNamespace string `json:"controlPlaneNamespace"`
}

// DefaultVizValues are `weft viz install` without flags.
func DefaultVizValues() VizValues {
	return VizValues{
		ControllerImage: "weft/controller", ControllerVersion: version.Version,
		ScrapeInterval: 10 * time.Second, Window: time.Hour,
		CPURequest: vizCPURequest, MemoryRequest: vizMemoryRequest, MemoryLimit: vizMemoryLimit,
		ControlPlaneNamespace: injector.DefaultValues().ControlPlaneNamespace,
	}
}

// Validate reports the first invalid value, naming its flag.
func (v *VizValues) Validate() error {
	switch {
	case v.ControllerImage == "":
		return fmt.Errorf("--controller-image is empty: give an image without tag, e.g. weft/controller")
	case v.ControlPlaneNamespace == "":
		return fmt.Errorf("--weft-namespace is empty: give the namespace weft is installed in, e.g. weft")
	case v.ControllerVersion == "":
		return fmt.Errorf("--controller-version is empty: give the image tag, e.g. %s", version.Version)
	case v.ScrapeInterval < time.Second:
		return fmt.Errorf("--scrape-interval %s is below 1s: use e.g. 10s", v.ScrapeInterval)
	case v.Window < v.ScrapeInterval:
		return fmt.Errorf("--window %s is shorter than --scrape-interval %s: use e.g. 1h", v.Window, v.ScrapeInterval)
	case v.Window/v.ScrapeInterval > 100_000:
		return fmt.Errorf("--window %s holds more than 100000 scrape intervals of %s: lengthen the interval or shorten the window", v.Window, v.ScrapeInterval)
	}
	if v.PrometheusURL != "" {
		if _, err := promsource.CheckURL(v.PrometheusURL); err != nil {
			return fmt.Errorf("--prometheus-url: %w", err)
		}
	}
	for _, q := range []struct{ flag, value string }{
		{"--cpu-request", v.CPURequest}, {"--memory-request", v.MemoryRequest}, {"--memory-limit", v.MemoryLimit},
	} {
		if _, err := resource.ParseQuantity(q.value); err != nil {
			return fmt.Errorf("%s %q is not a Kubernetes quantity (e.g. 100m, 512Mi)", q.flag, q.value)
		}
	}
	return nil
}

// RenderViz renders the viz extension as one YAML stream, in apply order:
// namespace, ServiceAccount, RBAC, the tap API's Secret, Service,
// Deployment, APIService. The namespace is annotated for injection, so the
// weft webhook meshes the viz pod like any workload (a control plane must be
// installed first). c is the tap API's serving certificate (NewVizCerts).
func RenderViz(v VizValues, c *VizCerts) ([]byte, error) {
	if err := v.Validate(); err != nil {
		return nil, err
	}
	return marshalAll(vizObjects(&v, c))
}

// UninstallViz lists, as YAML stubs for `kubectl delete -f -`, the viz
// extension's APIService, its cluster-scoped RBAC, its RoleBinding in
// kube-system and its namespace (with everything in it).
func UninstallViz() []byte {
	stub := func(apiVersion, kind, ns, name string) string {
		s := "---\napiVersion: " + apiVersion + "\nkind: " + kind + "\nmetadata:\n  name: " + name + "\n"
		if ns != "" {
			s += "  namespace: " + ns + "\n"
		}
		return s
	}
	const rbac = "rbac.authorization.k8s.io/v1"
	return []byte(stub("apiregistration.k8s.io/v1", "APIService", "", TapVersion+"."+TapGroup) +
		stub(rbac, "ClusterRoleBinding", "", VizName) +
		stub(rbac, "ClusterRole", "", VizName) +
		stub(rbac, "ClusterRoleBinding", "", VizName+"-auth-delegator") +
		stub(rbac, "ClusterRole", "", TapClusterRole) +
		stub(rbac, "RoleBinding", "kube-system", VizName+"-auth-reader") +
		stub("v1", "Namespace", "", VizNamespace))
}

func vizLabels() map[string]string {
	return map[string]string{"app.kubernetes.io/part-of": "weft", "app.kubernetes.io/name": VizName, LabelExtension: "viz"}
}

func vizSelector() map[string]string {
	return map[string]string{LabelExtension: "viz", "app.kubernetes.io/name": VizName}
}

func vizMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: VizNamespace, Labels: vizLabels()}
}

func vizObjects(v *VizValues, c *VizCerts) []object {
	rbacMeta := metav1.ObjectMeta{Name: VizName, Labels: vizLabels()}
	tapPre, tapPost := vizTapObjects(v, c)
	objs := []object{
		&corev1.Namespace{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: VizNamespace, Labels: vizLabels(),
				Annotations: map[string]string{annotations.Inject: annotations.Enabled}},
		},
		&corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: vizMeta(VizName)},
		// The window discovers pods (and their owners through the pod's
		// owner references and ReplicaSet names) and maps Service
		// addresses to names: read-only, nothing else.
		&rbacv1.ClusterRole{
			TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"}, ObjectMeta: rbacMeta,
			Rules: append([]rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods", "services"}, Verbs: read}}, vizTapRules()...),
		},
		&rbacv1.ClusterRoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: rbacMeta,
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: VizName},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: VizName, Namespace: VizNamespace}},
		},
	}
	objs = append(objs, tapPre...)
	objs = append(objs,
		&corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: vizMeta(VizName),
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeClusterIP, Selector: vizSelector(),
				Ports: []corev1.ServicePort{
					{Name: "http", Port: vizAPIPort, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP},
					{Name: "tap", Port: vizTapSvcPort, TargetPort: intstr.FromString("tap"), Protocol: corev1.ProtocolTCP},
				},
			},
		},
		vizDeployment(v, c),
	)
	return append(objs, tapPost...)
}

func vizDeployment(v *VizValues, certs *VizCerts) *appsv1.Deployment {
	podLabels := vizLabels()
	c := corev1.Container{
		Name: "viz", Image: v.ControllerImage + ":" + v.ControllerVersion, ImagePullPolicy: corev1.PullIfNotPresent,
		Args: []string{"viz",
			"--addr=:" + strconv.Itoa(vizAPIPort),
			"--admin-addr=:" + strconv.Itoa(vizAdminPort),
			"--scrape-interval=" + v.ScrapeInterval.String(),
			"--window=" + v.Window.String(),
		},
		Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: vizAPIPort, Protocol: corev1.ProtocolTCP},
			{Name: "admin", ContainerPort: vizAdminPort, Protocol: corev1.ProtocolTCP},
		},
		ReadinessProbe: adminProbe("/ready", vizAdminPort, 5, 3),
		LivenessProbe:  adminProbe("/live", vizAdminPort, 10, 3),
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(v.CPURequest), corev1.ResourceMemory: resource.MustParse(v.MemoryRequest)},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(v.MemoryLimit)},
		},
		SecurityContext:          controllerSecurity(),
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	if v.PrometheusURL != "" {
		c.Args = append(c.Args, "--prometheus-url="+v.PrometheusURL)
	}
	spec := corev1.PodSpec{
		ServiceAccountName: VizName, AutomountServiceAccountToken: ptr(true),
		NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
	}
	vizTapPod(v, &spec, &c)
	spec.Containers = []corev1.Container{c}
	skipIn, skipOut := vizTapPorts()
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: vizMeta(VizName),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: vizSelector()},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: map[string]string{
					annotations.Inject: annotations.Enabled,
					// Scrapes go straight to each proxy's admin port and
					// taps to its tap port, which every proxy's inbound
					// redirect skips as well (see vizTapPorts).
					annotations.SkipOutboundPorts: skipOut,
					annotations.SkipInboundPorts:  skipIn,
					// A new serving certificate (every install) rolls the
					// pod, which reads it at start, with the APIService's
					// new caBundle.
					TapCertHashAnnotation: certs.hash(),
				}},
				Spec: spec,
			},
		},
	}
}
