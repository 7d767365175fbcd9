//go:build e2e

package tests

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// echoService creates a Deployment "echo" of weft-testapp http servers and a Service "echo"
// (port 80 → http) in front of it.
func echoService(t *testing.T, ns string, replicas int32) {
	t.Helper()
	labels := map[string]string{"app": "echo"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr[int64](5),
					Containers:                    []corev1.Container{httpServerContainer()},
				},
			},
		},
	}
	if _, err := kube.AppsV1().Deployments(ns).Create(ctxFor(t, time.Minute), dep, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Labels: labels},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), AppProtocol: ptr("http")}},
		},
	}
	if _, err := kube.CoreV1().Services(ns).Create(ctxFor(t, time.Minute), svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service: %v", err)
	}
}

// waitReadyEndpoints waits until the Service's EndpointSlices list exactly want ready addresses
// (and, for want > 0, the Deployment reports as many ready replicas).
func waitReadyEndpoints(t *testing.T, ns, svc string, want int) {
	t.Helper()
	waitFor(t, podTimeout, fmt.Sprintf("service %s/%s to have %d ready endpoints", ns, svc, want), func(ctx context.Context) (bool, string, error) {
		slices, err := kube.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
		if err != nil {
			return false, err.Error(), nil
		}
		ready, total := 0, 0
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				total++
				if e.Conditions.Ready == nil || *e.Conditions.Ready {
					ready += len(e.Addresses)
				}
			}
		}
		return ready == want, fmt.Sprintf("%d slices, %d endpoints, %d ready addresses", len(slices.Items), total, ready), nil
	})
}

func scale(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	s, err := kube.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get scale %s: %v", name, err)
	}
	s.Spec.Replicas = replicas
	if _, err := kube.AppsV1().Deployments(ns).UpdateScale(ctx, name, s, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("scale %s to %d: %v", name, replicas, err)
	}
}

// TestDeploymentScaleEndpointSlice: scaling a Deployment 1→3→1 is followed by its Service's
// EndpointSlices (ready pods only).
func TestDeploymentScaleEndpointSlice(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	echoService(t, ns, 1)
	waitReadyEndpoints(t, ns, "echo", 1)
	scale(t, ns, "echo", 3)
	waitReadyEndpoints(t, ns, "echo", 3)
	scale(t, ns, "echo", 1)
	waitReadyEndpoints(t, ns, "echo", 1)
	waitFor(t, podTimeout, "deployment echo back to 1 pod", func(ctx context.Context) (bool, string, error) {
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=echo"})
		if err != nil {
			return false, err.Error(), nil
		}
		return len(pods.Items) == 1, fmt.Sprintf("%d pods", len(pods.Items)), nil
	})
}

// TestJobWithNativeSidecarCompletes: a Job whose pod has a native sidecar (an init container with
// restartPolicy Always) completes once its main container exits 0.
func TestJobWithNativeSidecarCompletes(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "with-sidecar"},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr[int32](0),
			Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{
					RestartPolicy:                 corev1.RestartPolicyNever,
					TerminationGracePeriodSeconds: ptr[int64](5),
					InitContainers:                []corev1.Container{sidecarContainer()},
					Containers:                    []corev1.Container{testappContainer("main", "sleep", "1s")},
				},
			},
		},
	}
	if _, err := kube.BatchV1().Jobs(ns).Create(ctxFor(t, time.Minute), job, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create job: %v", err)
	}
	waitFor(t, podTimeout, "job with-sidecar to complete", func(ctx context.Context) (bool, string, error) {
		j, err := kube.BatchV1().Jobs(ns).Get(ctx, "with-sidecar", metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		for _, c := range j.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				continue
			}
			switch c.Type {
			case batchv1.JobComplete:
				return true, "", nil
			case batchv1.JobFailed:
				return false, "", fmt.Errorf("job failed: %s: %s", c.Reason, c.Message)
			}
		}
		return false, fmt.Sprintf("active=%d succeeded=%d failed=%d", j.Status.Active, j.Status.Succeeded, j.Status.Failed), nil
	})
}

// sidecarContainer is a native sidecar that records its lifecycle and gates the main containers
// with a startup probe that passes only after it has recorded "ready" (1 s after its start).
func sidecarContainer() corev1.Container {
	c := testappContainer("sidecar", "record-lifecycle", "-", "--name", "sidecar", "--listen", ":8081", "--ready-after", "1s")
	c.RestartPolicy = ptr(corev1.ContainerRestartPolicyAlways)
	c.StartupProbe = &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8081)}},
		PeriodSeconds:    1,
		FailureThreshold: 60,
	}
	return c
}
