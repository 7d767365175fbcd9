package kubelet

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// effectiveSecurityContext merges the pod-level security context into the container's, as
// kubelet: container fields win; runAsUser, runAsGroup, runAsNonRoot, seLinuxOptions,
// seccompProfile, appArmorProfile and windowsOptions are inherited from the pod when unset.
// Capabilities, privileged, readOnlyRootFilesystem and allowPrivilegeEscalation are
// container-only. It returns nil when neither sets anything.
func effectiveSecurityContext(pod *corev1.Pod, c *corev1.Container) *corev1.SecurityContext {
	psc := pod.Spec.SecurityContext
	if c.SecurityContext == nil && psc == nil {
		return nil
	}
	sc := &corev1.SecurityContext{}
	if c.SecurityContext != nil {
		sc = c.SecurityContext.DeepCopy()
	}
	if psc == nil {
		return sc
	}
	if sc.RunAsUser == nil && psc.RunAsUser != nil {
		v := *psc.RunAsUser
		sc.RunAsUser = &v
	}
	if sc.RunAsGroup == nil && psc.RunAsGroup != nil {
		v := *psc.RunAsGroup
		sc.RunAsGroup = &v
	}
	if sc.RunAsNonRoot == nil && psc.RunAsNonRoot != nil {
		v := *psc.RunAsNonRoot
		sc.RunAsNonRoot = &v
	}
	if sc.SELinuxOptions == nil && psc.SELinuxOptions != nil {
		sc.SELinuxOptions = psc.SELinuxOptions.DeepCopy()
	}
	if sc.SeccompProfile == nil && psc.SeccompProfile != nil {
		sc.SeccompProfile = psc.SeccompProfile.DeepCopy()
	}
	if sc.AppArmorProfile == nil && psc.AppArmorProfile != nil {
		sc.AppArmorProfile = psc.AppArmorProfile.DeepCopy()
	}
	if sc.WindowsOptions == nil && psc.WindowsOptions != nil {
		sc.WindowsOptions = psc.WindowsOptions.DeepCopy()
	}
	return sc
}

// verifyRunAsNonRoot refuses to run a container as uid 0 when runAsNonRoot is set. Images here
// have no USER, so an unset runAsUser means root, and is refused too (kubelet's message).
func verifyRunAsNonRoot(pod *corev1.Pod, c *corev1.Container, sc *corev1.SecurityContext) error {
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		return nil
	}
	if sc.RunAsUser == nil {
		return fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)",
			pod.Namespace+"/"+pod.Name, c.Name)
	}
	if *sc.RunAsUser == 0 {
		return fmt.Errorf("container's runAsUser breaks non-root policy (pod: %q, container: %s)",
			pod.Namespace+"/"+pod.Name, c.Name)
	}
	return nil
}
