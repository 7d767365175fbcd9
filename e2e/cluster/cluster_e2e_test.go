//go:build e2e

package cluster

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

const identityAudience = "identity.weft.io"

// TestControlPlane runs the real control plane (no node agent) and checks the behaviour the
// mesh relies on. It reuses a running cluster and stops it at the end only if it started it.
func TestControlPlane(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := Ensure(ctx, Config{NoNode: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Started() {
		t.Cleanup(func() {
			if err := Down(context.Background(), Config{}); err != nil {
				t.Errorf("down: %v", err)
			}
			if _, err := os.Stat(c.paths.cluster); !os.IsNotExist(err) {
				t.Errorf("%s still exists after Down: %v", c.paths.cluster, err)
			}
			for _, comp := range components(c.paths) {
				if pids := strays(c.paths, comp); len(pids) > 0 {
					t.Errorf("%s still running after Down: %v", comp.name, pids)
				}
			}
		})
	}
	client := kubernetes.NewForConfigOrDie(c.RESTConfig())
	for _, name := range []string{etcdName, apiserverComp, kcmComp} {
		if _, err := os.Stat(filepath.Join(c.LogsDir(), name+".log")); err != nil {
			t.Errorf("log of %s: %v", name, err)
		}
	}

	ns := fmt.Sprintf("cluster-e2e-%d", time.Now().UnixNano()%1_000_000)
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })

	poll := func(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 90*time.Second, true, cond); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	t.Run("apiserver ready and admin identity", func(t *testing.T) {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil || string(body) != "ok" {
			t.Fatalf("/readyz = %q, %v", body, err)
		}
		r, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		u := r.Status.UserInfo
		if u.Username != AdminUser || !slices.Contains(u.Groups, "system:masters") {
			t.Errorf("admin is %q %v, want %s in system:masters", u.Username, u.Groups, AdminUser)
		}
		v, err := client.Discovery().ServerVersion()
		if err != nil || v.GitVersion != KubeVersion {
			t.Errorf("server version %v (%v), want %s", v, err, KubeVersion)
		}
	})

	t.Run("kubernetes service points at the bridge gateway", func(t *testing.T) {
		svc, err := client.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if svc.Spec.ClusterIP != KubernetesSvc {
			t.Errorf("kubernetes ClusterIP %s, want %s", svc.Spec.ClusterIP, KubernetesSvc)
		}
		poll(t, "kubernetes EndpointSlice with "+AdvertiseAddr, func(ctx context.Context) (bool, error) {
			slices, err := client.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"})
			if err != nil {
				return false, err
			}
			for _, s := range slices.Items {
				for _, e := range s.Endpoints {
					if len(e.Addresses) > 0 && e.Addresses[0] == AdvertiseAddr {
						return true, nil
					}
				}
			}
			return false, nil
		})
	})

	t.Run("root CA published in a new namespace", func(t *testing.T) {
		ca := c.RESTConfig().CAData
		poll(t, "ConfigMap kube-root-ca.crt", func(ctx context.Context) (bool, error) {
			cm, err := client.CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			if err != nil {
				return false, err
			}
			if !bytes.Equal(bytes.TrimSpace([]byte(cm.Data["ca.crt"])), bytes.TrimSpace(ca)) {
				return false, fmt.Errorf("kube-root-ca.crt holds another CA than the kubeconfig's")
			}
			return true, nil
		})
	})

	t.Run("deployment creates replicaset and pods", func(t *testing.T) {
		labels := map[string]string{"app": "web"}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](2),
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					// An image the node agent does not know: the pods never run, even on a full cluster.
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "weft/cluster-e2e-none:0"}}},
				},
			},
		}
		if _, err := client.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, "replicaset owned by the deployment", func(ctx context.Context) (bool, error) {
			rs, err := client.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return false, err
			}
			return len(rs.Items) == 1 && metav1.IsControlledBy(&rs.Items[0], mustGetDeployment(ctx, t, client, ns, "web")), nil
		})
		poll(t, "2 pods", func(ctx context.Context) (bool, error) {
			pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return false, err
			}
			if len(pods.Items) != 2 {
				return false, nil
			}
			for _, p := range pods.Items {
				if p.Spec.ServiceAccountName != "default" || p.Status.Phase == corev1.PodRunning {
					return false, fmt.Errorf("pod %s: serviceAccount %q phase %s", p.Name, p.Spec.ServiceAccountName, p.Status.Phase)
				}
			}
			return true, nil
		})
	})

	t.Run("service gets an endpointslice", func(t *testing.T) {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": "web"},
				Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
			},
		}
		created, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !inServiceCIDR(created.Spec.ClusterIP) {
			t.Errorf("ClusterIP %s outside %s", created.Spec.ClusterIP, ServiceCIDR)
		}
		poll(t, "EndpointSlice for web", func(ctx context.Context) (bool, error) {
			es, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
			if err != nil {
				return false, err
			}
			// Without ready pods the controller writes a placeholder slice (no endpoints, no ports).
			for _, s := range es.Items {
				if metav1.IsControlledBy(&s, created) {
					return true, nil
				}
			}
			return false, nil
		})
	})

	t.Run("token request and review with the identity audience", func(t *testing.T) {
		sa := mustServiceAccount(ctx, t, client, ns, "workload")
		tr, err := client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{Audiences: []string{identityAudience}, ExpirationSeconds: ptr.To[int64](3600)},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		review := func(audiences []string) *authenticationv1.TokenReview {
			t.Helper()
			r, err := client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
				Spec: authenticationv1.TokenReviewSpec{Token: tr.Status.Token, Audiences: audiences},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		r := review([]string{identityAudience})
		want := fmt.Sprintf("system:serviceaccount:%s:%s", ns, sa.Name)
		if !r.Status.Authenticated || r.Status.User.Username != want || !slices.Contains(r.Status.Audiences, identityAudience) {
			t.Errorf("review = authenticated %v user %q audiences %v error %q, want %s for %s",
				r.Status.Authenticated, r.Status.User.Username, r.Status.Audiences, r.Status.Error, want, identityAudience)
		}
		// The identity token is not an apiserver credential.
		if r := review(nil); r.Status.Authenticated {
			t.Errorf("token for %s authenticates to the apiserver audience", identityAudience)
		}
	})

	t.Run("rbac denies an unprivileged service account", func(t *testing.T) {
		sa := mustServiceAccount(ctx, t, client, ns, "nobody")
		tr, err := client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rc := rest.AnonymousClientConfig(c.RESTConfig())
		rc.BearerToken = tr.Status.Token
		saClient := kubernetes.NewForConfigOrDie(rc)
		who, err := saClient.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if want := "system:serviceaccount:" + ns + ":nobody"; who.Status.UserInfo.Username != want {
			t.Errorf("token authenticates as %q, want %q", who.Status.UserInfo.Username, want)
		}
		_, err = saClient.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) {
			t.Errorf("list secrets as %s: %v, want 403 Forbidden", sa.Name, err)
		}
	})
}

func mustGetDeployment(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name string) *appsv1.Deployment {
	t.Helper()
	d, err := client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustServiceAccount(ctx context.Context, t *testing.T, client kubernetes.Interface, ns, name string) *corev1.ServiceAccount {
	t.Helper()
	sa, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return sa
}

func inServiceCIDR(ip string) bool {
	a, err := netip.ParseAddr(ip)
	return err == nil && netip.MustParsePrefix(ServiceCIDR).Contains(a)
}
