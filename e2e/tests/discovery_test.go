//go:build e2e

package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	sp "github.com/weftmesh/weft/api/serviceprofile/v1alpha1"
	"github.com/weftmesh/weft/e2e/testapp"
	"github.com/weftmesh/weft/internal/annotations"
)

// The discovery tests run the destination service in a pod of the test's
// namespace (real RBAC, real informers), backends of `weft-testapp backend`
// behind a Service "echo", and a meshed `weft-testapp load` client whose proxy
// discovers, balances, routes and retries through that destination service.

const (
	destinationName = "weft-destination"
	destinationPort = 8086
	destAdminPort   = 9996
	loadPort        = 9100
	echoHTTPPort    = 8080
	echoGRPCPort    = 9090
)

var crdOnce sync.Once

// installCRDs applies `weft install --crds` (idempotent, cluster-scoped, shared by every test).
func installCRDs(t *testing.T) {
	t.Helper()
	var err error
	crdOnce.Do(func() {
		var out string
		if out, err = weftCLI(t, "install", "--crds"); err != nil {
			err = fmt.Errorf("weft install --crds: %w", err)
			return
		}
		kubectl(t, out, "apply", "-f", "-")
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "serviceprofiles.weft.io to be served", func(context.Context) (bool, string, error) {
		return crdsServed(t), "", nil
	})
}

// discoveryEnv is one test's namespace with its destination service.
type discoveryEnv struct {
	ns string
	// destAddr is the destination Service's host:port for the proxies.
	destAddr string
}

// newDiscovery creates a namespace, installs the CRDs and runs the
// destination service there: ServiceAccount, ClusterRole/Binding (named per
// namespace, labelled for the suite's stale cleanup), Deployment and Service.
func newDiscovery(t *testing.T) *discoveryEnv {
	t.Helper()
	installCRDs(t)
	ns := newNamespace(t)
	d := &discoveryEnv{ns: ns, destAddr: fmt.Sprintf("%s.%s.svc.cluster.local:%d", destinationName, ns, destinationPort)}
	ctx := ctxFor(t, time.Minute)

	if _, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: destinationName}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create serviceaccount: %v", err)
	}
	read := []string{"get", "list", "watch"}
	crName := "weft-e2e-destination-" + ns
	cr := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: crName, Labels: clusterScopedLabels(ns)},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"services", "pods"}, Verbs: read},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: read},
			{APIGroups: []string{sp.Group}, Resources: []string{sp.Resource}, Verbs: read},
		},
	}
	if _, err := kube.RbacV1().ClusterRoles().Create(ctx, cr, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create clusterrole: %v", err)
	}
	t.Cleanup(func() { deleteClusterScoped(t, "clusterrole", crName, kube.RbacV1().ClusterRoles().Delete) })
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: crName, Labels: clusterScopedLabels(ns)},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: crName},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: destinationName, Namespace: ns}},
	}
	if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create clusterrolebinding: %v", err)
	}
	t.Cleanup(func() {
		deleteClusterScoped(t, "clusterrolebinding", crName, kube.RbacV1().ClusterRoleBindings().Delete)
	})

	labels := map[string]string{"app": destinationName}
	c := corev1.Container{
		Name: "destination", Image: "weft/controller:latest",
		Args: []string{"destination", "--addr", fmt.Sprintf(":%d", destinationPort), "--admin-addr", fmt.Sprintf(":%d", destAdminPort)},
		Ports: []corev1.ContainerPort{
			{Name: "grpc", ContainerPort: destinationPort},
			{Name: "admin", ContainerPort: destAdminPort},
		},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("admin")}},
			PeriodSeconds: 1,
		},
	}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: destinationName, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName:            destinationName,
					TerminationGracePeriodSeconds: ptr[int64](5),
					Containers:                    []corev1.Container{c},
				},
			},
		},
	}
	if _, err := kube.AppsV1().Deployments(ns).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create destination deployment: %v", err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: destinationName, Labels: labels},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports: []corev1.ServicePort{
				{Name: "grpc", Port: destinationPort, TargetPort: intstr.FromString("grpc"), AppProtocol: ptr("grpc")},
				{Name: "admin", Port: destAdminPort, TargetPort: intstr.FromString("admin")},
			},
		},
	}
	if _, err := kube.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create destination service: %v", err)
	}
	waitReadyEndpoints(t, ns, destinationName, 1)
	return d
}

// proxyEnv is the proxy environment of the tests' meshed pods: no identity,
// this namespace's destination service.
func (d *discoveryEnv) proxyEnv() map[string]string {
	return map[string]string{
		"WEFT_PROXY_IDENTITY_DISABLED":    "true",
		"WEFT_PROXY_DESTINATION_SVC_ADDR": d.destAddr,
	}
}

// mesh injects the proxy into p and sets the discovery environment,
// replacing the injector's values of the same names.
func (d *discoveryEnv) mesh(t *testing.T, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	meshed(t, p)
	for i := range p.Spec.InitContainers {
		c := &p.Spec.InitContainers[i]
		if c.Name != annotations.ProxyContainer {
			continue
		}
		for name, value := range d.proxyEnv() {
			found := false
			for j := range c.Env {
				if c.Env[j].Name == name {
					c.Env[j] = corev1.EnvVar{Name: name, Value: value}
					found = true
				}
			}
			if !found {
				c.Env = append(c.Env, corev1.EnvVar{Name: name, Value: value})
			}
		}
	}
	return p
}

// backends creates a meshed Deployment name of `weft-testapp backend` pods
// labelled app=echo (so the Service "echo" selects them), with extra args;
// a name starting with "plain-" makes the pods unmeshed.
func (d *discoveryEnv) backends(t *testing.T, name string, replicas int32, args ...string) {
	t.Helper()
	c := testappContainer("backend", append([]string{"backend", "--addr", fmt.Sprintf(":%d", echoHTTPPort),
		"--grpc-addr", fmt.Sprintf(":%d", echoGRPCPort), "--shutdown-delay", "3s"}, args...)...)
	c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: echoHTTPPort}, {Name: "grpc", ContainerPort: echoGRPCPort}}
	c.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
		PeriodSeconds: 1,
	}
	labels := map[string]string{"app": "echo", "deployment": name}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{TerminationGracePeriodSeconds: ptr[int64](10), Containers: []corev1.Container{c}},
	}
	if !strings.HasPrefix(name, "plain-") {
		pod = d.mesh(t, pod)
	}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec},
		},
	}
	if _, err := kube.AppsV1().Deployments(d.ns).Create(ctxFor(t, time.Minute), dep, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment %s: %v", name, err)
	}
}

// echoSvc creates the Service "echo" (80 → http, 9090 → grpc) over every app=echo pod.
func (d *discoveryEnv) echoSvc(t *testing.T) {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "echo"},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), AppProtocol: ptr("http")},
				{Name: "grpc", Port: echoGRPCPort, TargetPort: intstr.FromString("grpc"), AppProtocol: ptr("kubernetes.io/h2c")},
			},
		},
	}
	if _, err := kube.CoreV1().Services(d.ns).Create(ctxFor(t, time.Minute), svc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service echo: %v", err)
	}
}

// echoURL is the Service's URL for path, as the client application dials it.
func (d *discoveryEnv) echoURL(path string) string {
	return fmt.Sprintf("http://echo.%s.svc.cluster.local%s", d.ns, path)
}

// loadClient runs a meshed `weft-testapp load` pod and waits for it to be ready.
func (d *discoveryEnv) loadClient(t *testing.T) *corev1.Pod {
	t.Helper()
	c := testappContainer("load", "load", "--addr", fmt.Sprintf(":%d", loadPort))
	c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: loadPort}}
	c.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
		PeriodSeconds: 1,
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "load", Labels: map[string]string{"app": "load"}},
		Spec:       corev1.PodSpec{TerminationGracePeriodSeconds: ptr[int64](5), Containers: []corev1.Container{c}},
	}
	createPod(t, d.ns, d.mesh(t, p))
	return waitPod(t, d.ns, "load", "to be ready", podReady)
}

// loadRun has the load client perform spec and returns what it observed.
func loadRun(t *testing.T, client *corev1.Pod, spec testapp.LoadSpec) testapp.LoadResult {
	t.Helper()
	res, err := tryRun(t.Context(), client, spec)
	if err != nil {
		t.Fatalf("load run %s: %v", spec.URL, err)
	}
	return res
}

func tryRun(ctx context.Context, client *corev1.Pod, spec testapp.LoadSpec) (testapp.LoadResult, error) {
	var res testapp.LoadResult
	body, err := json.Marshal(spec)
	if err != nil {
		return res, err
	}
	rate := max(spec.Rate, 1)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(spec.Count/rate)*time.Second+2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://%s:%d/run", client.Status.PodIP, loadPort), bytes.NewReader(body))
	if err != nil {
		return res, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return res, err
	}
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("POST /run: %s: %s", resp.Status, b)
	}
	return res, json.Unmarshal(b, &res)
}

// shares renders per-backend counts as "name=n (p%)", sorted by name.
func shares(backends map[string]int) string {
	total := 0
	var names []string
	for n, c := range backends {
		total += c
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s=%d (%.1f%%)", n, backends[n], 100*float64(backends[n])/float64(max(total, 1))))
	}
	return strings.Join(parts, ", ")
}

// podsOf lists the pods matching selector in ns.
func podsOf(t *testing.T, ns, selector string) []corev1.Pod {
	t.Helper()
	l, err := kube.CoreV1().Pods(ns).List(ctxFor(t, time.Minute), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatalf("list pods %s: %v", selector, err)
	}
	return l.Items
}

// sumSamples adds up every sample of name (labelled or not) whose line contains all fragments.
func sumSamples(metrics, name string, fragments ...string) float64 {
	var sum float64
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, f := range fragments {
			ok = ok && strings.Contains(line, f)
		}
		if !ok {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// destinationMetric sums the samples of name with all fragments from the destination pod.
func (d *discoveryEnv) destinationMetric(t *testing.T, name string, fragments ...string) float64 {
	t.Helper()
	pods := podsOf(t, d.ns, "app="+destinationName)
	if len(pods) != 1 {
		t.Fatalf("%d destination pods, want 1", len(pods))
	}
	var body string
	waitFor(t, time.Minute, "destination metrics", func(ctx context.Context) (bool, string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s:%d/metrics", pods[0].Status.PodIP, destAdminPort), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error(), nil
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = string(b)
		return err == nil && resp.StatusCode == http.StatusOK, resp.Status, nil
	})
	return sumSamples(body, name, fragments...)
}

// profileName is the ServiceProfile name for the Service "echo".
func (d *discoveryEnv) profileName() string { return "echo." + d.ns + ".svc.cluster.local" }

// applyProfile creates or replaces the ServiceProfile of "echo" with spec (YAML).
func (d *discoveryEnv) applyProfile(t *testing.T, specYAML string) {
	t.Helper()
	dyn := dynamic.NewForConfigOrDie(restConfig).Resource(sp.GroupVersionResource).Namespace(d.ns)
	doc := fmt.Sprintf("apiVersion: %s/%s\nkind: %s\nmetadata:\n  name: %s\nspec:\n%s", sp.Group, sp.Version, sp.Kind, d.profileName(), indent(specYAML, "  "))
	js, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatalf("profile YAML: %v\n%s", err, doc)
	}
	var u unstructured.Unstructured
	if err := u.UnmarshalJSON(js); err != nil {
		t.Fatalf("profile: %v", err)
	}
	ctx := ctxFor(t, time.Minute)
	cur, err := dyn.Get(ctx, d.profileName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = dyn.Create(ctx, &u, metav1.CreateOptions{})
	case err == nil:
		u.SetResourceVersion(cur.GetResourceVersion())
		_, err = dyn.Update(ctx, &u, metav1.UpdateOptions{})
	}
	if err != nil {
		t.Fatalf("apply ServiceProfile %s: %v", d.profileName(), err)
	}
}

func (d *discoveryEnv) deleteProfile(t *testing.T) {
	t.Helper()
	dyn := dynamic.NewForConfigOrDie(restConfig).Resource(sp.GroupVersionResource).Namespace(d.ns)
	if err := dyn.Delete(ctxFor(t, time.Minute), d.profileName(), metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete ServiceProfile: %v", err)
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

// readyBackends waits until the Service "echo" has want ready endpoints and returns the names of
// the app=echo pods that are ready.
func readyBackends(t *testing.T, ns string, want int) map[string]bool {
	t.Helper()
	waitReadyEndpoints(t, ns, "echo", want)
	out := map[string]bool{}
	for _, p := range podsOf(t, ns, "app=echo") {
		if podReady(&p) && p.DeletionTimestamp == nil {
			out[p.Name] = true
		}
	}
	return out
}

// TestDiscoveryP2CAvoidsSlowReplica: three replicas behind a Service, one 50 ms slower; the
// client's proxy balances with P2C over peak-EWMA using the destination service's endpoints, so
// the slow replica gets far less than round robin's third.
func TestDiscoveryP2CAvoidsSlowReplica(t *testing.T) {
	t.Parallel()
	d := newDiscovery(t)
	d.backends(t, "echo", 2)
	d.backends(t, "echo-slow", 1, "--delay", "50ms")
	d.echoSvc(t)
	readyBackends(t, d.ns, 3)
	client := d.loadClient(t)

	res := loadRun(t, client, testapp.LoadSpec{URL: d.echoURL("/"), Count: 600, Rate: 40, Concurrency: 4})
	t.Logf("600 requests: ok=%d failed=%d; %s", res.OK, res.Failed, shares(res.Backends))
	if res.OK != 600 {
		t.Fatalf("%d of 600 requests failed: %+v", res.Failed, res)
	}
	slow := 0
	for name, n := range res.Backends {
		if strings.HasPrefix(name, "echo-slow-") {
			slow += n
		}
	}
	if share := float64(slow) / 600; share >= 0.15 {
		t.Errorf("slow replica got %.1f%% of requests, want < 15%% (round robin: 33%%): %s", 100*share, shares(res.Backends))
	}
	if fast := len(res.Backends) - btoi(slow > 0); fast != 2 {
		t.Errorf("want both fast replicas used: %s", shares(res.Backends))
	}
	if n := d.destinationMetric(t, "weft_destination_subscribers", `method="get"`); n < 1 {
		t.Errorf("weft_destination_subscribers{method=\"get\"} = %v, want ≥ 1", n)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestDiscoveryScaleAndRollingRestart: under steady load, scaling 1→3 brings the new replicas
// traffic, scaling 3→1 and a rolling restart lose no request, and the restarted pods get traffic.
func TestDiscoveryScaleAndRollingRestart(t *testing.T) {
	t.Parallel()
	d := newDiscovery(t)
	d.backends(t, "echo", 1)
	d.echoSvc(t)
	first := readyBackends(t, d.ns, 1)
	client := d.loadClient(t)

	stop := make(chan struct{})
	type outcome struct {
		runs []testapp.LoadResult
		err  error
	}
	done := make(chan outcome, 1)
	var mu sync.Mutex
	var seen []map[string]int // per finished run, for the waits below
	go func() {
		var out outcome
		defer func() { done <- out }()
		for range 60 {
			select {
			case <-stop:
				return
			default:
			}
			res, err := tryRun(t.Context(), client, testapp.LoadSpec{URL: d.echoURL("/"), Count: 50, Rate: 20, Concurrency: 2})
			if err != nil {
				out.err = err
				return
			}
			out.runs = append(out.runs, res)
			mu.Lock()
			seen = append(seen, res.Backends)
			mu.Unlock()
		}
		out.err = fmt.Errorf("load still running after 60 runs")
	}()
	// servedAfter waits until a run that started after now has served every pod in want.
	servedAfter := func(what string, want map[string]bool) {
		mu.Lock()
		from := len(seen) + 1 // the run in progress may have started before
		mu.Unlock()
		waitFor(t, 2*time.Minute, what, func(context.Context) (bool, string, error) {
			mu.Lock()
			defer mu.Unlock()
			got := map[string]bool{}
			for i := from; i < len(seen); i++ {
				for name := range seen[i] {
					got[name] = true
				}
			}
			for name := range want {
				if !got[name] {
					return false, fmt.Sprintf("runs since: %d, backends seen: %v", len(seen)-from, got), nil
				}
			}
			return true, "", nil
		})
	}
	servedAfter("the first replica to serve", first)

	scale(t, d.ns, "echo", 3)
	three := readyBackends(t, d.ns, 3)
	servedAfter("all 3 replicas to serve after scaling up", three)

	scale(t, d.ns, "echo", 1)
	one := readyBackends(t, d.ns, 1)
	waitFor(t, 2*time.Minute, "echo back to 1 pod", func(context.Context) (bool, string, error) {
		n := len(podsOf(t, d.ns, "app=echo"))
		return n == 1, fmt.Sprintf("%d pods", n), nil
	})
	servedAfter("the remaining replica to serve after scaling down", one)

	restartedAt := time.Now().Format(time.RFC3339)
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, restartedAt)
	if _, err := kube.AppsV1().Deployments(d.ns).Patch(ctxFor(t, time.Minute), "echo", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("rollout restart: %v", err)
	}
	waitFor(t, 3*time.Minute, "the rollout to finish", func(context.Context) (bool, string, error) {
		pods := podsOf(t, d.ns, "app=echo")
		fresh := 0
		for _, p := range pods {
			if !one[p.Name] && podReady(&p) {
				fresh++
			}
		}
		return len(pods) == 1 && fresh == 1, fmt.Sprintf("%d pods, %d new ready", len(pods), fresh), nil
	})
	restarted := readyBackends(t, d.ns, 1)
	servedAfter("the restarted replica to serve", restarted)
	close(stop)
	out := <-done
	if out.err != nil {
		t.Fatalf("steady load: %v", out.err)
	}

	total := testapp.LoadResult{Status: map[string]int{}, Backends: map[string]int{}}
	for _, r := range out.runs {
		total.Sent += r.Sent
		total.OK += r.OK
		total.Failed += r.Failed
		for k, v := range r.Status {
			total.Status[k] += v
		}
		for k, v := range r.Backends {
			total.Backends[k] += v
		}
		total.Errors = append(total.Errors, r.Errors...)
	}
	t.Logf("%d runs, %d requests: ok=%d failed=%d statuses=%v; %s", len(out.runs), total.Sent, total.OK, total.Failed, total.Status, shares(total.Backends))
	if total.Failed != 0 {
		t.Errorf("%d of %d requests failed during scale and rolling restart: %v %v", total.Failed, total.Sent, total.Status, total.Errors)
	}
	if len(total.Backends) < 4 {
		t.Errorf("want traffic on ≥ 4 distinct pods (1 + 2 scaled up + 1 restarted), got %s", shares(total.Backends))
	}
}

// TestDiscoveryGRPCOneConnection: a gRPC client on one connection is balanced per request over
// three replicas.
func TestDiscoveryGRPCOneConnection(t *testing.T) {
	t.Parallel()
	d := newDiscovery(t)
	// 20 ms per call: a service's latency, large against this machine's
	// scheduling hiccups, which peak-EWMA remembers for a good part of τ
	// (10 s): a replica that had one loses every comparison meanwhile, so
	// shares are measured over 40 s.
	d.backends(t, "echo", 3, "--delay", "20ms")
	d.echoSvc(t)
	readyBackends(t, d.ns, 3)
	client := d.loadClient(t)

	target := fmt.Sprintf("echo.%s.svc.cluster.local:%d", d.ns, echoGRPCPort)
	// Warm-up: the first call on each replica pays for the proxy's new
	// connection, a peak the RTT estimate forgets only over ~τ = 10 s.
	warm := loadRun(t, client, testapp.LoadSpec{URL: target, GRPC: true, Count: 100, Rate: 10, Concurrency: 2})
	t.Logf("warm-up, 100 calls over 10 s: ok=%d; %s", warm.OK, shares(warm.Backends))
	res := loadRun(t, client, testapp.LoadSpec{URL: target, GRPC: true, Count: 1200, Rate: 30, Concurrency: 4})
	t.Logf("1200 gRPC calls on one connection: ok=%d failed=%d statuses=%v; %s", res.OK, res.Failed, res.Status, shares(res.Backends))
	if res.OK != 1200 {
		t.Fatalf("%d of 1200 calls failed: %+v", res.Failed, res)
	}
	if len(res.Backends) != 3 {
		t.Fatalf("want 3 replicas answering, got %s", shares(res.Backends))
	}
	t.Logf("client proxy, outbound mean latency by endpoint (warm-up included): %s", meanLatencyByTarget(metricsOf(t, client), "outbound"))
	for name, n := range res.Backends {
		if float64(n)/1200 < 0.20 {
			t.Errorf("replica %s got %d of 1200 (< 20%%): %s", name, n, shares(res.Backends))
		}
	}
}

// meanLatencyByTarget renders response_latency_ms sum/count per target_addr of one direction.
func meanLatencyByTarget(metrics, direction string) string {
	sums, counts := map[string]float64{}, map[string]float64{}
	for _, line := range strings.Split(metrics, "\n") {
		var into map[string]float64
		switch {
		case strings.HasPrefix(line, "response_latency_ms_sum{"):
			into = sums
		case strings.HasPrefix(line, "response_latency_ms_count{"):
			into = counts
		default:
			continue
		}
		if !strings.Contains(line, fmt.Sprintf("direction=%q", direction)) {
			continue
		}
		_, rest, ok := strings.Cut(line, `target_addr="`)
		if !ok {
			continue
		}
		addr, _, _ := strings.Cut(rest, `"`)
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			into[addr] += v
		}
	}
	var addrs []string
	for a := range counts {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	var parts []string
	for _, a := range addrs {
		if counts[a] > 0 {
			parts = append(parts, fmt.Sprintf("%s: %.0f × %.1f ms", a, counts[a], sums[a]/counts[a]))
		}
	}
	return strings.Join(parts, ", ")
}

// TestDiscoveryRetries: a route failing half the time and marked isRetryable succeeds ≥ 95 %
// with the retry amplification bounded by the budget; a non-retryable POST is sent exactly once.
func TestDiscoveryRetries(t *testing.T) {
	t.Parallel()
	d := newDiscovery(t)
	d.backends(t, "echo", 3)
	d.echoSvc(t)
	readyBackends(t, d.ns, 3)
	d.applyProfile(t, `routes:
- name: flaky
  condition: {method: GET, pathRegex: /flaky}
  isRetryable: true
- name: flaky-post
  condition: {method: POST, pathRegex: /flaky-post}
retryBudget: {retryRatio: 1.0, minRetriesPerSecond: 5, ttl: 10s}
`)
	client := d.loadClient(t)
	dst := fmt.Sprintf(`dst="echo.%s.svc.cluster.local:80"`, d.ns)
	// The profile reaches the proxy with the first request's subscription; wait until the
	// route is named in the metrics.
	waitFor(t, 2*time.Minute, "the flaky route in the client proxy's metrics", func(context.Context) (bool, string, error) {
		loadRun(t, client, testapp.LoadSpec{URL: d.echoURL("/flaky?fail=0"), Count: 2, Rate: 10})
		m := metricsOf(t, client)
		return sumSamples(m, "route_request_total", `rt_route="flaky"`, dst) > 0, grepLines(m, "route_request_total"), nil
	})
	before := metricsOf(t, client)

	const n = 600
	// budgetLimit is the most attempts per request the budget allows over a
	// run that lasted took: ratio 1.0 per request plus the reserve, which refills
	// at minRetriesPerSecond (5/s) and holds up to a ttl (10 s) of it.
	budgetLimit := func(took time.Duration) float64 {
		return 1 + 1.0 + 5*(took.Seconds()+10)/n + 0.05
	}
	start := time.Now()
	res := loadRun(t, client, testapp.LoadSpec{URL: d.echoURL("/flaky?fail=0.5"), Count: n, Rate: 30, Concurrency: 4})
	took := time.Since(start)
	after := metricsOf(t, client)
	reqs := sumSamples(after, "route_request_total", `rt_route="flaky"`, dst) - sumSamples(before, "route_request_total", `rt_route="flaky"`, dst)
	actual := sumSamples(after, "route_actual_request_total", `rt_route="flaky"`, dst) - sumSamples(before, "route_actual_request_total", `rt_route="flaky"`, dst)
	amp := actual / reqs
	success := float64(res.OK) / n
	t.Logf("GET /flaky?fail=0.5 ×%d: success %.1f%% (%v); route_request_total +%v, route_actual_request_total +%v: amplification %.2f (budget cap %.2f); %s",
		n, 100*success, res.Status, reqs, actual, amp, budgetLimit(took), shares(res.Backends))
	if success < 0.95 {
		t.Errorf("success rate %.1f%%, want ≥ 95%% with retries", 100*success)
	}
	if reqs != n {
		t.Errorf("route_request_total grew by %v, want %d", reqs, n)
	}
	// Half the attempts fail: about one retry per request, within the budget.
	if limit := budgetLimit(took); amp > limit || amp < 1.5 {
		t.Errorf("retry amplification %.2f, want within [1.5, %.2f]", amp, limit)
	}

	// A POST on a failing route without isRetryable is never retried.
	const posts = 100
	before = metricsOf(t, client)
	res = loadRun(t, client, testapp.LoadSpec{URL: d.echoURL("/flaky-post?fail=0.5"), Method: http.MethodPost, Body: "payload", Count: posts, Rate: 20, Concurrency: 2})
	after = metricsOf(t, client)
	postReqs := sumSamples(after, "route_request_total", `rt_route="flaky-post"`) - sumSamples(before, "route_request_total", `rt_route="flaky-post"`)
	postActual := sumSamples(after, "route_actual_request_total", `rt_route="flaky-post"`) - sumSamples(before, "route_actual_request_total", `rt_route="flaky-post"`)
	atBackends := 0
	for _, p := range podsOf(t, d.ns, "app=echo") {
		atBackends += backendCount(t, &p, "POST /flaky-post")
	}
	t.Logf("POST /flaky-post?fail=0.5 ×%d: ok=%d statuses=%v; backends counted %d; route_request_total +%v, route_actual_request_total +%v",
		posts, res.OK, res.Status, atBackends, postReqs, postActual)
	if atBackends != posts {
		t.Errorf("backends received %d POSTs, want exactly %d (no retries)", atBackends, posts)
	}
	if res.Failed < 10 || res.Failed > 90 {
		t.Errorf("%d of %d POSTs failed; want about half (they must not be retried)", res.Failed, posts)
	}
	if postReqs != posts || postActual != posts {
		t.Errorf("route_request_total +%v, route_actual_request_total +%v; want both %d", postReqs, postActual, posts)
	}

	// The budget caps retries: with 90 % failures a request alone would be
	// tried ~7 times (up to 10 retries), but the budget allows only
	// retryRatio retries per request plus the reserve. The earlier requests'
	// deposits expire after the ttl (10 s) first.
	time.Sleep(11 * time.Second)
	before = metricsOf(t, client)
	start = time.Now()
	res = loadRun(t, client, testapp.LoadSpec{URL: d.echoURL("/flaky?fail=0.9"), Count: n, Rate: 30, Concurrency: 4})
	took = time.Since(start)
	after = metricsOf(t, client)
	reqs = sumSamples(after, "route_request_total", `rt_route="flaky"`, dst) - sumSamples(before, "route_request_total", `rt_route="flaky"`, dst)
	actual = sumSamples(after, "route_actual_request_total", `rt_route="flaky"`, dst) - sumSamples(before, "route_actual_request_total", `rt_route="flaky"`, dst)
	amp = actual / reqs
	t.Logf("GET /flaky?fail=0.9 ×%d: success %.1f%% (%v); route_request_total +%v, route_actual_request_total +%v: amplification %.2f (unbudgeted ≈ 6.9); run %v, budget cap %.2f",
		n, 100*float64(res.OK)/n, res.Status, reqs, actual, amp, took.Round(time.Second), budgetLimit(took))
	if limit := budgetLimit(took); amp > limit || amp < 1.5 {
		t.Errorf("retry amplification %.2f with 90%% failures, want within [1.5, %.2f] (the budget's cap)", amp, limit)
	}
}

// backendCount reads one key of a backend pod's /counts (through its proxy's inbound side).
func backendCount(t *testing.T, p *corev1.Pod, key string) int {
	t.Helper()
	var counts map[string]int
	waitFor(t, time.Minute, "/counts of "+p.Name, func(ctx context.Context) (bool, string, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s:%d/counts", p.Status.PodIP, echoHTTPPort), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error(), nil
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, resp.Status, nil
		}
		return true, "", json.NewDecoder(resp.Body).Decode(&counts)
	})
	return counts[key]
}

// TestDiscoveryRouteTimeout: a route with a 100 ms timeout in front of a 1 s handler answers 504
// with weft-proxy-error: timeout, and the application behind the meshed backend's own proxy sees
// its request cancelled (the client proxy closes its connection; the backend's inbound proxy
// aborts its request to the app when its client leaves).
func TestDiscoveryRouteTimeout(t *testing.T) {
	t.Parallel()
	d := newDiscovery(t)
	d.backends(t, "echo", 1)
	d.echoSvc(t)
	readyBackends(t, d.ns, 1)
	d.applyProfile(t, `routes:
- name: slow
  condition: {pathRegex: /slow}
  timeout: 100ms
`)
	backend := podsOf(t, d.ns, "app=echo")[0]
	logs := followLogs(t, &backend, "backend")
	client := d.loadClient(t)

	waitFor(t, 2*time.Minute, "the slow route's timeout to apply", func(context.Context) (bool, string, error) {
		res := loadRun(t, client, testapp.LoadSpec{URL: d.echoURL("/slow?sleep=1s"), Count: 1, Rate: 1})
		return res.Status["504"] == 1, fmt.Sprint(res.Status), nil
	})
	const n = 10
	res := loadRun(t, client, testapp.LoadSpec{URL: d.echoURL("/slow?sleep=1s"), Count: n, Rate: 5, Concurrency: 2})
	t.Logf("GET /slow?sleep=1s ×%d with a 100ms route timeout: statuses=%v proxy errors=%v", n, res.Status, res.ProxyErrors)
	if res.Status["504"] != n || res.ProxyErrors["timeout"] != n {
		t.Errorf("want %d × 504 with weft-proxy-error: timeout, got statuses %v, proxy errors %v", n, res.Status, res.ProxyErrors)
	}
	logs.waitContains(t, "backend", "cancelled GET /slow")
}

// TestDiscoveryProfileLifecycle: creating, editing and deleting a ServiceProfile changes the
// client proxy's behaviour on the fly.
func TestDiscoveryProfileLifecycle(t *testing.T) {
	t.Parallel()
	d := newDiscovery(t)
	d.backends(t, "echo", 2)
	d.echoSvc(t)
	readyBackends(t, d.ns, 2)
	client := d.loadClient(t)
	url := d.echoURL("/slow?sleep=300ms")
	profile := func(timeout string) string {
		return fmt.Sprintf("routes:\n- name: slow\n  condition: {pathRegex: /slow}\n  timeout: %s\n", timeout)
	}
	// phase waits until a probe answers want, then checks a batch all does.
	phase := func(what, want string) {
		t.Helper()
		waitFor(t, 2*time.Minute, what, func(context.Context) (bool, string, error) {
			res := loadRun(t, client, testapp.LoadSpec{URL: url, Count: 1, Rate: 1})
			return res.Status[want] == 1, fmt.Sprint(res.Status), nil
		})
		res := loadRun(t, client, testapp.LoadSpec{URL: url, Count: 20, Rate: 10, Concurrency: 2})
		t.Logf("%s: statuses %v, proxy errors %v", what, res.Status, res.ProxyErrors)
		if res.Status[want] != 20 {
			t.Errorf("%s: want 20 × %s, got %v", what, want, res.Status)
		}
	}
	phase("no profile: the slow route answers", "200")
	d.applyProfile(t, profile("100ms"))
	phase("profile created with a 100ms timeout: 504s", "504")
	d.applyProfile(t, profile("5s"))
	phase("timeout edited to 5s: 200s", "200")
	// An edit the CRD accepts but the destination rejects (RE2 syntax) keeps
	// the previous version in service.
	invalid := d.destinationMetric(t, "weft_destination_profile_invalid_total")
	d.applyProfile(t, "routes:\n- name: slow\n  condition: {pathRegex: \"/slow(\"}\n  timeout: 100ms\n")
	waitFor(t, time.Minute, "the destination to reject the invalid edit", func(context.Context) (bool, string, error) {
		n := d.destinationMetric(t, "weft_destination_profile_invalid_total")
		return n > invalid, fmt.Sprintf("weft_destination_profile_invalid_total %v", n), nil
	})
	phase("invalid edit rejected: the 5s timeout stays, 200s", "200")
	d.applyProfile(t, profile("100ms"))
	phase("timeout edited back to 100ms: 504s", "504")
	d.deleteProfile(t)
	phase("profile deleted: no timeout", "200")
}

// TestDiscoveryDestinationOutage: with the destination service down, requests keep going to the
// endpoints the proxy knows (a replica added meanwhile gets nothing); once it is back, the new
// replica gets traffic.
func TestDiscoveryDestinationOutage(t *testing.T) {
	t.Parallel()
	d := newDiscovery(t)
	d.backends(t, "echo", 2)
	d.echoSvc(t)
	known := readyBackends(t, d.ns, 2)
	client := d.loadClient(t)

	res := loadRun(t, client, testapp.LoadSpec{URL: d.echoURL("/"), Count: 60, Rate: 20, Concurrency: 2})
	t.Logf("destination up: ok=%d/60; %s", res.OK, shares(res.Backends))
	if res.OK != 60 {
		t.Fatalf("destination up: want 60 OK, got %+v", res)
	}

	// Killed mid-traffic: a run is going while the destination goes away.
	type outcome struct {
		res testapp.LoadResult
		err error
	}
	during := make(chan outcome, 1)
	go func() {
		res, err := tryRun(t.Context(), client, testapp.LoadSpec{URL: d.echoURL("/"), Count: 300, Rate: 20, Concurrency: 2})
		during <- outcome{res, err}
	}()
	time.Sleep(2 * time.Second) // let the run get going
	scale(t, d.ns, destinationName, 0)
	waitFor(t, 2*time.Minute, "the destination pod to be gone", func(context.Context) (bool, string, error) {
		n := len(podsOf(t, d.ns, "app="+destinationName))
		return n == 0, fmt.Sprintf("%d pods", n), nil
	})
	out := <-during
	if out.err != nil {
		t.Fatalf("run while the destination goes away: %v", out.err)
	}
	t.Logf("destination killed mid-run: ok=%d/300; %s", out.res.OK, shares(out.res.Backends))
	if out.res.OK != 300 {
		t.Errorf("destination killed mid-run: %d of 300 failed: %v %v", out.res.Failed, out.res.Status, out.res.Errors)
	}
	res = loadRun(t, client, testapp.LoadSpec{URL: d.echoURL("/"), Count: 100, Rate: 20, Concurrency: 2})
	t.Logf("destination down: ok=%d/100; %s", res.OK, shares(res.Backends))
	if res.OK != 100 {
		t.Errorf("destination down: %d of 100 failed: %v %v", res.Failed, res.Status, res.Errors)
	}

	scale(t, d.ns, "echo", 3)
	all := readyBackends(t, d.ns, 3)
	var added string
	for name := range all {
		if !known[name] {
			added = name
		}
	}
	res = loadRun(t, client, testapp.LoadSpec{URL: d.echoURL("/"), Count: 100, Rate: 20, Concurrency: 2})
	t.Logf("destination down, replica %s added: ok=%d/100; %s", added, res.OK, shares(res.Backends))
	if res.OK != 100 {
		t.Errorf("destination down, scaled up: %d of 100 failed: %v %v", res.Failed, res.Status, res.Errors)
	}
	if res.Backends[added] != 0 {
		t.Errorf("replica %s added while the destination is down got %d requests; the proxy cannot know it", added, res.Backends[added])
	}

	scale(t, d.ns, destinationName, 1)
	waitReadyEndpoints(t, d.ns, destinationName, 1)
	var total testapp.LoadResult
	waitFor(t, 2*time.Minute, "the added replica "+added+" to get traffic", func(context.Context) (bool, string, error) {
		res := loadRun(t, client, testapp.LoadSpec{URL: d.echoURL("/"), Count: 30, Rate: 20, Concurrency: 2})
		total.Sent += res.Sent
		total.Failed += res.Failed
		return res.Backends[added] > 0, shares(res.Backends), nil
	})
	t.Logf("destination back: %d requests until %s was served, %d failed", total.Sent, added, total.Failed)
	if total.Failed != 0 {
		t.Errorf("destination back: %d of %d failed", total.Failed, total.Sent)
	}
}

// TestDiscoveryGRPCRouteTimeout: ServiceProfile routes apply to gRPC (HTTP/2) too: a route
// naming the gRPC method with a 100 ms timeout fails 1 s calls with a timeout from the proxy,
// counted under the route; a longer timeout lets them through.
func TestDiscoveryGRPCRouteTimeout(t *testing.T) {
	t.Parallel()
	d := newDiscovery(t)
	d.backends(t, "echo", 2, "--delay", "1s")
	d.echoSvc(t)
	readyBackends(t, d.ns, 2)
	profile := func(timeout string) string {
		return fmt.Sprintf("routes:\n- name: check\n  condition: {method: POST, pathRegex: '/grpc\\.health\\.v1\\.Health/Check'}\n  timeout: %s\n", timeout)
	}
	d.applyProfile(t, profile("100ms"))
	client := d.loadClient(t)
	target := fmt.Sprintf("echo.%s.svc.cluster.local:%d", d.ns, echoGRPCPort)

	waitFor(t, 2*time.Minute, "the check route's timeout to apply", func(context.Context) (bool, string, error) {
		res := loadRun(t, client, testapp.LoadSpec{URL: target, GRPC: true, Count: 1, Rate: 1})
		return res.OK == 0, fmt.Sprintf("%v %v", res.Status, res.ProxyErrors), nil
	})
	res := loadRun(t, client, testapp.LoadSpec{URL: target, GRPC: true, Count: 10, Rate: 5, Concurrency: 2})
	m := metricsOf(t, client)
	t.Logf("1 s gRPC calls, 100ms route timeout: statuses %v, proxy errors %v; route metrics:\n%s", res.Status, res.ProxyErrors, grepLines(m, "route_response_total"))
	if res.Status["DeadlineExceeded"] != 10 {
		t.Errorf("want 10 × DeadlineExceeded with the 100ms route timeout, got %v", res.Status)
	}
	if n := sumSamples(m, "route_response_total", `rt_route="check"`, `classification="failure"`); n < 10 {
		t.Errorf("client proxy counted %v failed responses on route check, want ≥ 10", n)
	}

	d.applyProfile(t, profile("5s"))
	waitFor(t, 2*time.Minute, "the 5s timeout to apply", func(context.Context) (bool, string, error) {
		res := loadRun(t, client, testapp.LoadSpec{URL: target, GRPC: true, Count: 1, Rate: 1})
		return res.OK == 1, fmt.Sprintf("%v %v", res.Status, res.ProxyErrors), nil
	})
	res = loadRun(t, client, testapp.LoadSpec{URL: target, GRPC: true, Count: 10, Rate: 5, Concurrency: 4})
	t.Logf("1 s gRPC calls, 5s route timeout: statuses %v", res.Status)
	if res.OK != 10 {
		t.Errorf("5s route timeout: %d of 10 calls failed: %v", res.Failed, res.Status)
	}
}
