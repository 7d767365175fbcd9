package manifests

import (
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/weftmesh/weft/injector"
	"github.com/weftmesh/weft/internal/annotations"
)

// Render renders the CRD-less control plane of v with key material c as one
// YAML stream. Control-plane pods are rendered already meshed by the same
// injector.Inject the webhook runs (the webhook never sees the control-plane
// namespace: it cannot inject itself, and nothing could be injected before it
// runs). See docs/install.md, "Bootstrap order".
func Render(v Values, c *Certs) ([]byte, error) {
	objs, err := objects(v, c, meshPod)
	if err != nil {
		return nil, err
	}
	return marshalAll(objs)
}

// meshPod injects the proxy into a control-plane pod and marks it as
// injected by the CLI.
func meshPod(pod *corev1.Pod, v *Values) error {
	if _, err := injector.Inject(pod, v.Values); err != nil {
		return err
	}
	if err := checkMeshed(pod); err != nil {
		return err
	}
	pod.Annotations[annotations.InjectedBy] = "cli"
	if pod.Labels[LabelComponent] == "identity" {
		bootstrapIdentityProxy(pod)
	}
	return nil
}

// bootstrapIdentityProxy lets identity's own proxy get its certificate from
// the identity container next to it: it asks over loopback instead of through
// the Service (whose endpoints are not ready before identity is), and it no
// longer holds the identity container's start until it is ready — which it
// cannot be before identity serves.
func bootstrapIdentityProxy(pod *corev1.Pod) {
	for _, list := range []*[]corev1.Container{&pod.Spec.InitContainers, &pod.Spec.Containers} {
		for i := range *list {
			c := &(*list)[i]
			if c.Name != annotations.ProxyContainer {
				continue
			}
			for j := range c.Env {
				if c.Env[j].Name == "WEFT_PROXY_IDENTITY_SVC_ADDR" {
					c.Env[j].Value = "localhost:" + strconv.Itoa(identityGRPCPort)
				}
			}
			if c.Lifecycle != nil {
				c.Lifecycle.PostStart = nil
				if c.Lifecycle.PreStop == nil {
					c.Lifecycle = nil
				}
			}
		}
	}
}

// checkMeshed reports a control-plane pod without a proxy.
func checkMeshed(pod *corev1.Pod) error {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			if c.Name == annotations.ProxyContainer {
				return nil
			}
		}
	}
	return fmt.Errorf("pod of %s has no %s container", pod.Labels[LabelComponent], annotations.ProxyContainer)
}
