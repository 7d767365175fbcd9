package kubelet

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// containerSpec resolves what the runtime needs to start c: merged security context (refusing
// root under runAsNonRoot), environment, and $(VAR)-expanded command and args. Errors are
// configuration errors. Caller holds w.mu.
func (w *podWorker) containerSpec(ctx context.Context, c *corev1.Container) (ContainerSpec, error) {
	pod := w.pod
	sc := effectiveSecurityContext(pod, c)
	if err := verifyRunAsNonRoot(pod, c, sc); err != nil {
		return ContainerSpec{}, &configError{err: err}
	}
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	var svcs []*corev1.Service
	if links {
		svcs = w.k.namespaceServices(pod.Namespace)
	}
	client := w.k.client
	env, vars, err := resolveEnv(ctx, envInput{
		pod:         pod,
		container:   c,
		podIPs:      w.podIPs,
		hostIP:      w.k.cfg.NodeIP,
		serviceEnv:  serviceEnv(w.k.cfg.KubernetesService, svcs, links),
		allocatable: w.k.cfg.Capacity,
		configMap: func(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
			return client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		},
		secret: func(ctx context.Context, ns, name string) (*corev1.Secret, error) {
			return client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		},
	})
	if err != nil {
		return ContainerSpec{}, err
	}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	expandAll := func(in []string) []string {
		if in == nil {
			return nil
		}
		out := make([]string, len(in))
		for i, s := range in {
			out[i] = expand(s, lookup)
		}
		return out
	}
	return ContainerSpec{
		Name:            c.Name,
		Image:           c.Image,
		Command:         expandAll(c.Command),
		Args:            expandAll(c.Args),
		Env:             env,
		WorkingDir:      c.WorkingDir,
		VolumeMounts:    c.VolumeMounts,
		SecurityContext: sc,
	}, nil
}
