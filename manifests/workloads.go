package manifests

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/weftmesh/weft/internal/annotations"
)

func meta(v *Values, name, short string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: v.ControlPlaneNamespace, Labels: labels(v, short)}
}

func namespace(v *Values) *corev1.Namespace {
	return &corev1.Namespace{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{
			Name:   v.ControlPlaneNamespace,
			Labels: labels(v, ""),
			// The webhook never sees this namespace; its pods are rendered
			// already meshed (docs/install.md, bootstrap order).
			Annotations: map[string]string{annotations.Inject: annotations.Disabled},
		},
	}
}

func serviceAccount(v *Values, comp component) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: meta(v, comp.name, comp.short),
	}
}

func service(v *Values, comp component) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(v, comp.name, comp.short),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: selector(v, comp),
			Ports: []corev1.ServicePort{{
				Name: comp.grpcName, Port: comp.svcPort, TargetPort: intstr.FromString(comp.grpcName),
				Protocol: corev1.ProtocolTCP,
			}},
		},
	}
}

func deployment(v *Values, comp component, mesh meshFunc) (*appsv1.Deployment, error) {
	podMeta := metav1.ObjectMeta{
		Labels:      selector(v, comp),
		Annotations: map[string]string{annotations.Inject: annotations.Enabled},
	}
	for k, val := range comp.podAnnotations {
		podMeta.Annotations[k] = val
	}
	for k, val := range labels(v, comp.short) {
		podMeta.Labels[k] = val
	}
	pod := &corev1.Pod{ObjectMeta: podMeta, Spec: podSpec(v, comp)}
	if mesh != nil {
		// The Deployment's pods inherit the template's namespace.
		pod.Namespace = v.ControlPlaneNamespace
		if err := mesh(pod, v); err != nil {
			return nil, fmt.Errorf("mesh %s: %w", comp.name, err)
		}
		pod.Namespace = ""
	}
	maxUnavailable := intstr.FromInt32(1)
	maxSurge := intstr.FromString("25%")
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: meta(v, comp.name, comp.short),
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(v.Replicas()),
			Selector: &metav1.LabelSelector{MatchLabels: selector(v, comp)},
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &maxUnavailable, MaxSurge: &maxSurge},
			},
			Template: corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec},
		},
	}, nil
}

func podSpec(v *Values, comp component) corev1.PodSpec {
	c := corev1.Container{
		Name:            comp.short,
		Image:           v.ControllerImage + ":" + v.ControllerVersion,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Args:            comp.args,
		Ports: []corev1.ContainerPort{
			{Name: comp.grpcName, ContainerPort: comp.grpcPort, Protocol: corev1.ProtocolTCP},
			{Name: "admin", ContainerPort: comp.adminPort, Protocol: corev1.ProtocolTCP},
		},
		ReadinessProbe: adminProbe("/ready", comp.adminPort, 5, 3),
		LivenessProbe:  adminProbe("/live", comp.adminPort, 10, 3),
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse(controllerCPURequest),
				corev1.ResourceMemory: resource.MustParse(controllerMemoryRequest),
			},
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(controllerMemoryLimit)},
		},
		SecurityContext:          controllerSecurity(),
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		VolumeMounts:             comp.mounts,
	}
	spec := corev1.PodSpec{
		ServiceAccountName:           comp.name,
		AutomountServiceAccountToken: ptr(true),
		NodeSelector:                 map[string]string{"kubernetes.io/os": "linux"},
		Containers:                   []corev1.Container{c},
		Volumes:                      comp.volumes,
	}
	if comp.fsGroup != 0 {
		spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr(comp.fsGroup)}
	}
	if v.HA {
		spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			// Preferred, not required: a cluster with fewer nodes than
			// replicas still runs them all.
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
				Weight: 100,
				PodAffinityTerm: corev1.PodAffinityTerm{
					LabelSelector: &metav1.LabelSelector{MatchLabels: selector(v, comp)},
					TopologyKey:   "kubernetes.io/hostname",
				},
			}},
		}}
	}
	return spec
}

// controllerSecurity is the security context of every weft-controller
// container: non-root, read-only, no capabilities.
func controllerSecurity() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr(true),
		RunAsUser:                ptr(int64(controllerUID)),
		RunAsGroup:               ptr(int64(controllerUID)),
		AllowPrivilegeEscalation: ptr(false),
		ReadOnlyRootFilesystem:   ptr(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

func pdb(v *Values, comp component) *policyv1.PodDisruptionBudget {
	one := intstr.FromInt32(1)
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: meta(v, comp.name, comp.short),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: &one,
			Selector:       &metav1.LabelSelector{MatchLabels: selector(v, comp)},
		},
	}
}
