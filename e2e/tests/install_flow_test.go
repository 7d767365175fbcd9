//go:build e2e

package tests

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/weftmesh/weft/e2e/demo/manifests"
	"github.com/weftmesh/weft/internal/annotations"
)

// installFlowPrefix names the control-plane namespaces TestInstallFlow installs into.
const installFlowPrefix = "weft-e2e-"

// staleInstallAge is how old a weft-e2e-* control plane must be before a new run removes it as
// left behind by a killed run (no run takes this long).
const staleInstallAge = time.Hour

// cli runs the weft binaries and kubectl exactly as a user types them: separate processes,
// connected by pipes, with KUBECONFIG set.
type cli struct {
	bin        string // directory of the weft binaries
	kubeconfig string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	bin := os.Getenv("WEFT_BIN_DIR")
	if bin == "" {
		bin = filepath.Join(filepath.Dir(cacheDir()), "bin")
	}
	if os.Getenv("WEFT_CACHE_DIR") != "" && os.Getenv("WEFT_BIN_DIR") == "" {
		// cacheDir is then not inside the repository: find bin/ next to go.mod.
		if wd, err := os.Getwd(); err == nil {
			bin = filepath.Join(wd, "..", "..", "bin")
		}
	}
	if _, err := os.Stat(filepath.Join(bin, "weft")); err != nil {
		t.Fatalf("the weft CLI is not built (%v): run make build", err)
	}
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Fatalf("kubectl: %v", err)
	}
	return &cli{bin: bin, kubeconfig: filepath.Join(cacheDir(), "cluster", "kubeconfig")}
}

func (c *cli) command(ctx context.Context, argv []string) *exec.Cmd {
	name := argv[0]
	if name == "weft" {
		name = filepath.Join(c.bin, "weft")
	}
	cmd := exec.CommandContext(ctx, name, argv[1:]...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig)
	return cmd
}

// run runs one command and returns its stdout; it fails t unless the command succeeds.
func (c *cli) run(t *testing.T, stdin string, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := c.command(ctx, argv)
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(argv, " "), err, tail(out.String(), 3000), errOut.String())
	}
	t.Logf("$ %s\n%s%s", strings.Join(argv, " "), tail(out.String(), 1500), errOut.String())
	return out.String()
}

// pipe runs `left | right` (stdout of left into stdin of right) and returns right's stdout,
// failing t (with both commands' stderr) unless both succeed.
func (c *cli) pipe(t *testing.T, left, right []string) string {
	t.Helper()
	out, err := c.tryPipe(t, left, right)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (c *cli) tryPipe(t *testing.T, left, right []string) (string, error) {
	t.Helper()
	return c.pipeCtx(t.Context(), t, left, right)
}

// pipeCtx is tryPipe bounded by parent instead of the test's context (cleanups run after it
// is cancelled).
func (c *cli) pipeCtx(parent context.Context, t *testing.T, left, right []string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(parent, 3*time.Minute)
	defer cancel()
	l, r := c.command(ctx, left), c.command(ctx, right)
	var lErr, rOut, rErr bytes.Buffer
	l.Stderr, r.Stdout, r.Stderr = &lErr, &rOut, &rErr
	pr, pw, err := os.Pipe()
	if err != nil {
		return "", fmt.Errorf("pipe: %w", err)
	}
	l.Stdout, r.Stdin = pw, pr
	if err := l.Start(); err != nil {
		pr.Close()
		pw.Close()
		return "", fmt.Errorf("start %s: %w", left[0], err)
	}
	if err := r.Start(); err != nil {
		pr.Close()
		pw.Close()
		l.Wait()
		return "", fmt.Errorf("start %s: %w", right[0], err)
	}
	pw.Close()
	pr.Close()
	lRes, rRes := l.Wait(), r.Wait()
	line := strings.Join(left, " ") + " | " + strings.Join(right, " ")
	t.Logf("$ %s\n%s%s%s", line, tail(rOut.String(), 1500), lErr.String(), rErr.String())
	if lRes != nil || rRes != nil {
		return rOut.String(), fmt.Errorf("%s: left: %v, right: %v\nstderr of %s:\n%s\nstderr of %s:\n%s\nstdout:\n%s",
			line, lRes, rRes, left[0], lErr.String(), right[0], rErr.String(), tail(rOut.String(), 3000))
	}
	return rOut.String(), nil
}

// uninstall deletes the control plane in cpNS the documented way (keeping the CRDs, which
// other tests and runs share) and waits until its webhook is gone: a leftover webhook would be
// called for every pod of every other test.
func (c *cli) uninstall(t *testing.T, cpNS string) {
	t.Helper()
	if _, err := c.pipeCtx(context.Background(), t, []string{"weft", "uninstall", "--keep-crds", "--weft-namespace", cpNS},
		[]string{"kubectl", "delete", "-f", "-", "--ignore-not-found", "--wait=false"}); err != nil {
		t.Errorf("uninstall %s: %v", cpNS, err)
		return
	}
	webhook := "weft-" + cpNS + "-proxy-injector"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		_, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, webhook, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		select {
		case <-ctx.Done():
			t.Errorf("MutatingWebhookConfiguration %s still exists after uninstall (last error: %v)", webhook, err)
			return
		case <-time.After(pollEvery):
		}
	}
	for _, kind := range []string{"ClusterRole", "ClusterRoleBinding"} {
		for _, comp := range []string{"identity", "destination", "proxy-injector"} {
			name := "weft-" + cpNS + "-" + comp
			var err error
			if kind == "ClusterRole" {
				_, err = kube.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{})
			} else {
				_, err = kube.RbacV1().ClusterRoleBindings().Get(ctx, name, metav1.GetOptions{})
			}
			if !apierrors.IsNotFound(err) {
				t.Errorf("%s %s still exists after uninstall (err %v)", kind, name, err)
			}
		}
	}
}

// removeStaleInstalls uninstalls weft-e2e-* control planes older than staleInstallAge (left by
// runs that were killed before their cleanup); younger ones may belong to a concurrent run.
func removeStaleInstalls(t *testing.T, c *cli) {
	t.Helper()
	nss, err := kube.CoreV1().Namespaces().List(ctxFor(t, time.Minute), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list namespaces: %v", err)
	}
	for _, ns := range nss.Items {
		if strings.HasPrefix(ns.Name, installFlowPrefix) && ns.DeletionTimestamp == nil && time.Since(ns.CreationTimestamp.Time) > staleInstallAge {
			t.Logf("removing stale control plane %s (created %s)", ns.Name, ns.CreationTimestamp)
			c.uninstall(t, ns.Name)
		}
	}
}

func randomSuffix(t *testing.T) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// waitDeployment waits until every replica of the Deployment is updated and available, and
// returns how long that took.
func waitDeployment(t *testing.T, ns, name string) time.Duration {
	t.Helper()
	start := time.Now()
	waitFor(t, podTimeout, "deployment "+ns+"/"+name+" available", func(ctx context.Context) (bool, string, error) {
		d, err := kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		return d.Status.ObservedGeneration >= d.Generation && d.Status.AvailableReplicas == want && d.Status.UpdatedReplicas == want && d.Status.Replicas == want,
			fmt.Sprintf("%d/%d available, %d updated, %d total", d.Status.AvailableReplicas, want, d.Status.UpdatedReplicas, d.Status.Replicas), nil
	})
	return time.Since(start)
}

func listPods(t *testing.T, ns, selector string) []corev1.Pod {
	t.Helper()
	pods, err := kube.CoreV1().Pods(ns).List(ctxFor(t, time.Minute), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatalf("list pods in %s (%s): %v", ns, selector, err)
	}
	var live []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	return live
}

// proxyStatus finds the weft-proxy container of a pod: a native sidecar (init container with
// restartPolicy Always) or, in legacy mode, a regular container.
func proxyStatus(p *corev1.Pod) (spec *corev1.Container, status *corev1.ContainerStatus, native bool) {
	for i := range p.Spec.InitContainers {
		if p.Spec.InitContainers[i].Name == annotations.ProxyContainer {
			spec, native = &p.Spec.InitContainers[i], true
		}
	}
	for i := range p.Spec.Containers {
		if p.Spec.Containers[i].Name == annotations.ProxyContainer {
			spec = &p.Spec.Containers[i]
		}
	}
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if cs.Name == annotations.ProxyContainer {
			status = &cs
		}
	}
	return spec, status, native
}

// podNetns is the network namespace the node agent made for p (e2e/node/runtime: the default
// prefix plus 12 hex digits of sha256(uid)).
func podNetns(p *corev1.Pod) string {
	sum := sha256.Sum256([]byte(p.UID))
	return "/run/netns/weft-" + hex.EncodeToString(sum[:])[:12]
}

// netnsProcs returns, for every process in the network namespace at path, its pid, uid line
// (real, effective, saved, fs) and argv.
type nsProc struct {
	pid  int
	uids []string
	argv []string
}

func netnsProcs(path string) ([]nsProc, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []nsProc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil || link != want {
			continue
		}
		status, err1 := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		cmdline, err2 := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err1 != nil || err2 != nil {
			continue // exited meanwhile
		}
		p := nsProc{pid: pid, argv: strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) == 5 && f[0] == "Uid:" {
				p.uids = f[1:]
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// checkSidecar asserts that the proxy of a running meshed pod really runs: the proxy container
// is started and ready, weft-init installed the interception rules (its log, and the rules in
// the pod's netns), and the proxy process runs as uid 2102.
func checkSidecar(t *testing.T, p *corev1.Pod, injectedBy string) {
	t.Helper()
	checkProxy(t, p, injectedBy, true)
}

// checkProxy is checkSidecar for a native sidecar (native) or a legacy-mode proxy (the
// identity pod's, which must start before any certificate exists).
func checkProxy(t *testing.T, p *corev1.Pod, injectedBy string, wantNative bool) {
	t.Helper()
	if got := p.Annotations[annotations.InjectedBy]; got != injectedBy {
		t.Errorf("pod %s/%s: annotation %s = %q, want %q", p.Namespace, p.Name, annotations.InjectedBy, got, injectedBy)
	}
	spec, st, native := proxyStatus(p)
	if spec == nil {
		t.Fatalf("pod %s/%s has no %s container: %s", p.Namespace, p.Name, annotations.ProxyContainer, containerNames(p))
	}
	isNative := native && spec.RestartPolicy != nil && *spec.RestartPolicy == corev1.ContainerRestartPolicyAlways
	if isNative != wantNative {
		t.Errorf("pod %s/%s: %s native sidecar (init container with restartPolicy Always) = %t, want %t", p.Namespace, p.Name, annotations.ProxyContainer, isNative, wantNative)
	}
	if len(p.Spec.InitContainers) == 0 || p.Spec.InitContainers[0].Name != annotations.InitContainer {
		t.Errorf("pod %s/%s: first init container is %s, want %s", p.Namespace, p.Name, p.Spec.InitContainers[0].Name, annotations.InitContainer)
	}
	if st == nil || st.State.Running == nil || !st.Ready {
		t.Errorf("pod %s/%s: %s is not running and ready: %s", p.Namespace, p.Name, annotations.ProxyContainer, podState(p))
	}
	// weft-init: exited 0, said what it installed, and the rules are in the pod's netns.
	for _, cs := range p.Status.InitContainerStatuses {
		if cs.Name == annotations.InitContainer && (cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0) {
			t.Errorf("pod %s/%s: %s did not exit 0: %s", p.Namespace, p.Name, cs.Name, containerState(cs.State))
		}
	}
	if log, err := readContainerLog(p, annotations.InitContainer); err != nil {
		t.Errorf("pod %s/%s: %v", p.Namespace, p.Name, err)
	} else if !strings.Contains(log, "installed weft interception rules") {
		t.Errorf("pod %s/%s: %s log does not say the rules were installed:\n%s", p.Namespace, p.Name, annotations.InitContainer, log)
	}
	netns := podNetns(p)
	rules, err := exec.CommandContext(ctxFor(t, time.Minute), "ip", "netns", "exec", filepath.Base(netns), "iptables-save", "-t", "nat").CombinedOutput()
	if err != nil {
		t.Errorf("pod %s/%s: iptables-save in %s: %v\n%s", p.Namespace, p.Name, netns, err, rules)
	}
	for _, want := range []struct{ chain, has string }{
		{"PREROUTING", "-j WEFT_PROXY_INIT_PREROUTING"},
		{"OUTPUT", "-j WEFT_PROXY_INIT_OUTPUT"},
		{"WEFT_PROXY_INIT_OUTPUT", "--uid-owner 2102"},
		{"WEFT_PROXY_INIT_OUTPUT", "-j REDIRECT --to-ports 4140"},
		{"WEFT_PROXY_INIT_REDIRECT", "-j REDIRECT --to-ports 4143"},
	} {
		found := false
		for _, line := range strings.Split(string(rules), "\n") {
			found = found || (strings.HasPrefix(line, "-A "+want.chain+" ") && strings.Contains(line, want.has))
		}
		if !found {
			t.Errorf("pod %s/%s: nat rules in %s have no rule in %s with %q:\n%s", p.Namespace, p.Name, netns, want.chain, want.has, rules)
		}
	}
	// The proxy process: found by the pod's netns, running the proxy binary (not `init`).
	procs, err := netnsProcs(netns)
	if err != nil {
		t.Fatalf("pod %s/%s: processes: %v", p.Namespace, p.Name, err)
	}
	var found []nsProc
	for _, pr := range procs {
		if filepath.Base(pr.argv[0]) == "weft-proxy" && !slices.Contains(pr.argv, "init") {
			found = append(found, pr)
		}
	}
	if len(found) != 1 {
		t.Fatalf("pod %s/%s: want one weft-proxy process in %s, found %d (of %d processes: %v)", p.Namespace, p.Name, netns, len(found), len(procs), procs)
	}
	if want := []string{"2102", "2102", "2102", "2102"}; !slices.Equal(found[0].uids, want) {
		t.Errorf("pod %s/%s: proxy pid %d runs with Uid %v, want %v", p.Namespace, p.Name, found[0].pid, found[0].uids, want)
	}
}

func containerNames(p *corev1.Pod) string {
	var n []string
	for _, c := range p.Spec.InitContainers {
		n = append(n, "init:"+c.Name)
	}
	for _, c := range p.Spec.Containers {
		n = append(n, c.Name)
	}
	return strings.Join(n, ",")
}

// containerShape is what must be equal between a webhook-injected and a manually injected pod:
// everything but generated values.
func containerShape(p *corev1.Pod) []string {
	var out []string
	add := func(kind string, c corev1.Container) {
		var env []string
		for _, e := range c.Env {
			env = append(env, e.Name)
		}
		var mounts []string
		for _, m := range c.VolumeMounts {
			if !strings.HasPrefix(m.MountPath, "/var/run/secrets/kubernetes.io/") {
				mounts = append(mounts, m.Name+"@"+m.MountPath)
			}
		}
		rp := ""
		if c.RestartPolicy != nil {
			rp = string(*c.RestartPolicy)
		}
		out = append(out, fmt.Sprintf("%s %s image=%s command=%q args=%q env=%v mounts=%v restart=%s", kind, c.Name, c.Image, c.Command, c.Args, env, mounts, rp))
	}
	for _, c := range p.Spec.InitContainers {
		add("init", c)
	}
	for _, c := range p.Spec.Containers {
		add("container", c)
	}
	var vols []string
	for _, v := range p.Spec.Volumes {
		if !strings.HasPrefix(v.Name, "kube-api-access-") {
			vols = append(vols, v.Name)
		}
	}
	sort.Strings(vols)
	return append(out, fmt.Sprintf("volumes %v", vols))
}

// demoYAML is the demo manifest moved from namespace demo into ns: the Namespace object is
// dropped, and the namespace of every object and the in-cluster service names follow.
func demoYAML(ns string) string {
	var docs []string
	for _, d := range docStart.Split(string(manifests.Demo), -1) {
		if strings.TrimSpace(d) == "" || strings.Contains(d, "\nkind: Namespace\n") {
			continue
		}
		d = strings.ReplaceAll(d, "namespace: demo", "namespace: "+ns)
		d = strings.ReplaceAll(d, ".demo.svc.", "."+ns+".svc.")
		docs = append(docs, d)
	}
	return "---" + strings.Join(docs, "---")
}

// TestInstallFlow is the install path exactly as a user types it: the CRDs and the control
// plane through `weft install | kubectl apply -f -` (into a namespace of its own), then the
// demo app in a namespace annotated for injection, a Job, pod creation with the injector
// stopped, and `weft inject --manual` output applied directly. The control plane is removed
// with `weft uninstall | kubectl delete -f -` at the end (the CRDs stay: other tests use them).
func TestInstallFlow(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	removeStaleInstalls(t, c)
	cpNS := installFlowPrefix + randomSuffix(t)
	t.Logf("control-plane namespace %s", cpNS)
	t.Cleanup(func() {
		if t.Failed() {
			dumpNamespace(t, cpNS)
		}
		c.uninstall(t, cpNS)
	})

	var webhookPod *corev1.Pod // a demo pod injected by the webhook, for the manual comparison
	appNS := newNamespace(t)   // annotated for injection: the demo, the Job, the injector-down pod
	plainNS := newNamespace(t) // not annotated: the manually injected workload

	t.Run("crds", func(t *testing.T) {
		c.pipe(t, []string{"weft", "install", "--crds"}, []string{"kubectl", "apply", "-f", "-"})
		// As a user following the docs would: the CRD must be served before `weft install`
		// checks for it.
		c.run(t, "", "kubectl", "wait", "--for", "condition=Established", "--timeout", "2m", "crd/serviceprofiles.weft.io")
	})
	if t.Failed() {
		return
	}

	t.Run("control-plane", func(t *testing.T) {
		start := time.Now()
		out := c.pipe(t, []string{"weft", "install", "--weft-namespace", cpNS}, []string{"kubectl", "apply", "-f", "-"})
		for _, want := range []string{
			"namespace/" + cpNS + " created",
			"mutatingwebhookconfiguration.admissionregistration.k8s.io/weft-" + cpNS + "-proxy-injector created",
			"deployment.apps/weft-identity created",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl apply output lacks %q", want)
			}
		}
		for _, d := range []string{"weft-identity", "weft-destination", "weft-proxy-injector"} {
			waitDeployment(t, cpNS, d)
		}
		t.Logf("control plane available %s after apply started", time.Since(start).Round(100*time.Millisecond))
		pods := listPods(t, cpNS, "")
		if len(pods) != 3 {
			t.Errorf("control plane has %d pods, want 3: %v", len(pods), pods)
		}
		for i := range pods {
			p := &pods[i]
			if !podReady(p) {
				t.Errorf("control-plane pod %s not ready: %s", p.Name, podState(p))
			}
			_, st, _ := proxyStatus(p)
			if st == nil || st.State.Running == nil {
				t.Errorf("control-plane pod %s: proxy not running: %s", p.Name, podState(p))
			}
			// identity's proxy runs in legacy mode (it cannot wait for a certificate from
			// the container next to it); the others are native sidecars.
			checkProxy(t, p, "cli", p.Labels[annotations.ControlPlaneComp] != "identity")
		}
	})
	if t.Failed() {
		return
	}

	t.Run("version", func(t *testing.T) {
		out := c.run(t, "", "weft", "version", "--weft-namespace", cpNS)
		var client, server string
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, "Client version: "); ok {
				client = v
			}
			if v, ok := strings.CutPrefix(line, "Server version: "); ok {
				server = v
			}
		}
		if client == "" || server != client {
			t.Errorf("weft version: client %q, server %q; want the control plane at the CLI's version:\n%s", client, server, out)
		}
	})

	t.Run("demo-injected", func(t *testing.T) {
		c.run(t, "", "kubectl", "annotate", "ns", appNS, annotations.Inject+"="+annotations.Enabled)
		start := time.Now()
		c.run(t, demoYAML(appNS), "kubectl", "apply", "-f", "-")
		for _, d := range []string{"books", "authors", "web", "traffic"} {
			waitDeployment(t, appNS, d)
		}
		t.Logf("demo available %s after apply", time.Since(start).Round(100*time.Millisecond))
		pods := listPods(t, appNS, "")
		if len(pods) != 6 {
			t.Errorf("demo has %d pods, want 6", len(pods))
		}
		for i := range pods {
			checkSidecar(t, &pods[i], "webhook")
			if pods[i].Labels["app"] == "books" && webhookPod == nil {
				webhookPod = &pods[i]
			}
		}
		if t.Failed() {
			return
		}

		// Traffic: the generator's own figures, then both ends' proxies.
		tr := listPods(t, appNS, "app=traffic")[0]
		stats := fmt.Sprintf("http://%s:9000/stats", tr.Status.PodIP)
		client := &http.Client{Timeout: 10 * time.Second}
		waitFor(t, podTimeout, "every demo target to succeed at least 3 times", func(ctx context.Context) (bool, string, error) {
			rep, err := fetchStats(ctx, client, stats)
			if err != nil {
				return false, err.Error(), nil
			}
			var state []string
			done := len(rep.Targets) == 7
			for _, s := range rep.Targets {
				state = append(state, fmt.Sprintf("%s: %d/%d ok (%s)", s.Name, s.Successes, s.Requests, s.LastError))
				if s.Successes < 3 {
					done = false
				}
			}
			return done, strings.Join(state, "; "), nil
		})
		for _, app := range []string{"books", "authors", "web"} {
			var in bool
			for _, p := range listPods(t, appNS, "app="+app) {
				m := metricsOf(t, &p)
				in = in || hasSample(m, "request_total", `direction="inbound"`)
				t.Logf("%s metrics:\n%s", p.Name, grepLines(m, "request_total", "identity_cert", "weft_tls"))
			}
			if !in {
				t.Errorf("no %s proxy reports inbound requests", app)
			}
		}
		for _, app := range []string{"traffic", "web"} {
			p := listPods(t, appNS, "app="+app)[0]
			m := metricsOf(t, &p)
			t.Logf("%s metrics:\n%s", p.Name, grepLines(m, "request_total", "identity_cert", "weft_tls"))
			if !hasSample(m, "request_total", `direction="outbound"`) {
				t.Errorf("%s proxy reports no outbound requests:\n%s", app, tail(m, 3000))
			}
		}

		// mTLS between the proxies, with the workloads' identities on both ends: each client's
		// proxy names the server's identity, each server's proxy the client's.
		id := func(sa string) string { return "spiffe://cluster.local/ns/" + appNS + "/sa/" + sa }
		for _, hop := range []struct{ client, server, port string }{
			{"traffic", "web", "8080"}, {"traffic", "books", "7000"}, {"traffic", "authors", "7001"},
			{"web", "books", "7000"}, {"web", "authors", "7001"},
		} {
			authority := `authority="` + hop.server + "." + appNS + ".svc.cluster.local:" + hop.port + `"`
			var out, in bool
			for _, p := range listPods(t, appNS, "app="+hop.client) {
				out = out || hasSample(metricsOf(t, &p), "request_total", `direction="outbound"`, authority, `tls="true"`, `server_id="`+id(hop.server)+`"`)
			}
			for _, p := range listPods(t, appNS, "app="+hop.server) {
				in = in || hasSample(metricsOf(t, &p), "request_total", `direction="inbound"`, authority, `tls="true"`, `client_id="`+id(hop.client)+`"`)
			}
			if !out {
				t.Errorf("%s → %s: no outbound request_total{tls=\"true\",server_id=%q} on the %s proxies", hop.client, hop.server, id(hop.server), hop.client)
			}
			if !in {
				t.Errorf("%s → %s: no inbound request_total{tls=\"true\",client_id=%q} on the %s proxies", hop.client, hop.server, id(hop.client), hop.server)
			}
		}
		// Every meshed pod, control plane included, holds a certificate that expires within
		// the issuance lifetime (24h by default).
		for _, ns := range []string{appNS, cpNS} {
			for _, p := range listPods(t, ns, "") {
				checkCertificate(t, &p)
			}
		}
	})
	if t.Failed() {
		return
	}

	t.Run("job", func(t *testing.T) {
		job := &batchv1.Job{
			TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
			ObjectMeta: metav1.ObjectMeta{Name: "once", Namespace: appNS},
			Spec: batchv1.JobSpec{
				BackoffLimit: ptr[int32](0),
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "once"}},
					Spec: corev1.PodSpec{
						RestartPolicy:                 corev1.RestartPolicyNever,
						TerminationGracePeriodSeconds: ptr[int64](5),
						Containers:                    []corev1.Container{testappContainer("main", "sleep", "2s")},
					},
				},
			},
		}
		y, err := yaml.Marshal(job)
		if err != nil {
			t.Fatal(err)
		}
		c.run(t, string(y), "kubectl", "apply", "-f", "-")
		waitFor(t, podTimeout, "job once to complete", func(ctx context.Context) (bool, string, error) {
			j, err := kube.BatchV1().Jobs(appNS).Get(ctx, "once", metav1.GetOptions{})
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
		pods := listPods(t, appNS, "app=once")
		if len(pods) != 1 {
			t.Fatalf("job has %d pods, want 1", len(pods))
		}
		if spec, _, native := proxyStatus(&pods[0]); spec == nil || !native || pods[0].Annotations[annotations.InjectedBy] != "webhook" {
			t.Errorf("job pod was not injected by the webhook with a native sidecar: %s", containerNames(&pods[0]))
		}
		if pods[0].Status.Phase != corev1.PodSucceeded {
			t.Errorf("job pod phase %s, want Succeeded: %s", pods[0].Status.Phase, podState(&pods[0]))
		}
	})

	t.Run("injector-down", func(t *testing.T) {
		injectorSel := annotations.ControlPlaneComp + "=proxy-injector"
		if n := len(listPods(t, cpNS, injectorSel)); n != 1 {
			t.Fatalf("%d pods match %s before scaling the injector down, want 1", n, injectorSel)
		}
		c.run(t, "", "kubectl", "scale", "deploy/weft-proxy-injector", "--replicas=0", "-n", cpNS)
		waitFor(t, podTimeout, "the injector pod to be gone", func(ctx context.Context) (bool, string, error) {
			pods, err := kube.CoreV1().Pods(cpNS).List(ctx, metav1.ListOptions{LabelSelector: injectorSel})
			if err != nil {
				return false, err.Error(), nil
			}
			return len(pods.Items) == 0, fmt.Sprintf("%d injector pods", len(pods.Items)), nil
		})
		p := testappPod("while-injector-down", "sleep", "1h")
		p.Spec.TerminationGracePeriodSeconds = ptr[int64](1)
		created := createPod(t, appNS, p)
		if _, st, _ := proxyStatus(created); st != nil || len(created.Spec.InitContainers) != 0 || created.Annotations[annotations.InjectedBy] != "" {
			t.Errorf("pod created while the injector is down was injected: %s", containerNames(created))
		}
		running := waitPod(t, appNS, created.Name, "to run", func(p *corev1.Pod) bool { return podReady(p) })
		if len(running.Spec.Containers) != 1 || len(running.Spec.InitContainers) != 0 {
			t.Errorf("un-injected pod has containers %s", containerNames(running))
		}
		c.run(t, "", "kubectl", "scale", "deploy/weft-proxy-injector", "--replicas=1", "-n", cpNS)
		waitDeployment(t, cpNS, "weft-proxy-injector")
	})
	if t.Failed() {
		return
	}

	t.Run("no-certificate-not-ready", func(t *testing.T) {
		// A manually injected pod whose proxy cannot reach identity: it must not become
		// ready (and its app container must not start) without a certificate.
		pod := testappPod("no-cert", "sleep", "1h")
		pod.Spec.TerminationGracePeriodSeconds = ptr[int64](1)
		pod.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
		y, err := yaml.Marshal(pod)
		if err != nil {
			t.Fatal(err)
		}
		injected := c.run(t, string(y), "weft", "inject", "--manual", "--weft-namespace", cpNS, "-")
		var got corev1.Pod
		if err := yaml.Unmarshal([]byte(injected), &got); err != nil {
			t.Fatalf("weft inject --manual output is not a pod: %v\n%s", err, injected)
		}
		spec, _, _ := proxyStatus(&got)
		if spec == nil {
			t.Fatalf("weft inject --manual added no proxy: %s", containerNames(&got))
		}
		changed := false
		for i := range spec.Env {
			if spec.Env[i].Name == "WEFT_PROXY_IDENTITY_SVC_ADDR" {
				spec.Env[i].Value = "127.0.0.1:1" // nothing listens there, inside the pod
				changed = true
			}
		}
		if !changed {
			t.Fatalf("injected proxy has no WEFT_PROXY_IDENTITY_SVC_ADDR")
		}
		got.Namespace = plainNS
		created, err := kube.CoreV1().Pods(plainNS).Create(ctxFor(t, time.Minute), &got, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create pod: %v", err)
		}
		var ip string
		waitFor(t, podTimeout, "the proxy without identity to have failed a certificate request", func(ctx context.Context) (bool, string, error) {
			p, err := kube.CoreV1().Pods(plainNS).Get(ctx, created.Name, metav1.GetOptions{})
			if err != nil || p.Status.PodIP == "" {
				return false, fmt.Sprint(err), nil
			}
			ip = p.Status.PodIP
			m, err := scrape(ctx, ip)
			if err != nil {
				return false, err.Error(), nil
			}
			return sampleValue(m, "identity_cert_refresh_failures_total") >= 1, grepLines(m, "identity_cert"), nil
		})
		req, _ := http.NewRequestWithContext(ctxFor(t, time.Minute), http.MethodGet, fmt.Sprintf("http://%s:4191/ready", ip), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET /ready: %v", err)
		}
		body := new(bytes.Buffer)
		body.ReadFrom(resp.Body)
		resp.Body.Close()
		t.Logf("proxy without identity: GET /ready = %d %q", resp.StatusCode, strings.TrimSpace(body.String()))
		if resp.StatusCode == http.StatusOK || !strings.Contains(body.String(), "certificate") {
			t.Errorf("proxy without a certificate: /ready = %d %q, want 503 naming the certificate", resp.StatusCode, body.String())
		}
		p, err := kube.CoreV1().Pods(plainNS).Get(ctxFor(t, time.Minute), created.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if podReady(p) {
			t.Errorf("pod without a certificate is Ready: %s", podState(p))
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == "app" && cs.State.Running != nil {
				t.Errorf("app container started although its proxy has no certificate: %s", podState(p))
			}
		}
	})

	t.Run("inject-manual", func(t *testing.T) {
		if webhookPod == nil {
			t.Fatal("no webhook-injected books pod to compare with")
		}
		// The books ServiceAccount and Deployment of the demo, as a user's file.
		var docs []string
		for _, d := range docStart.Split(demoYAML(plainNS), -1) {
			if strings.Contains(d, "name: books") && (strings.Contains(d, "\nkind: Deployment\n") || strings.Contains(d, "\nkind: ServiceAccount\n")) {
				docs = append(docs, d)
			}
		}
		if len(docs) != 2 {
			t.Fatalf("found %d books documents in the demo manifest, want 2", len(docs))
		}
		file := filepath.Join(t.TempDir(), "books.yaml")
		if err := os.WriteFile(file, []byte("---"+strings.Join(docs, "---")), 0o644); err != nil {
			t.Fatal(err)
		}
		c.pipe(t, []string{"weft", "inject", "--manual", "--weft-namespace", cpNS, file}, []string{"kubectl", "apply", "-f", "-"})
		waitDeployment(t, plainNS, "books")
		pods := listPods(t, plainNS, "app=books")
		if len(pods) != 2 {
			t.Fatalf("manually injected books has %d pods, want 2", len(pods))
		}
		for i := range pods {
			checkSidecar(t, &pods[i], "cli")
		}
		if got, want := containerShape(&pods[0]), containerShape(webhookPod); !slices.Equal(got, want) {
			t.Errorf("manually injected pod differs from the webhook-injected one:\nmanual:\n  %s\nwebhook:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		// Meshed: the proxy answers and counts the probes' inbound requests.
		if m := metricsOf(t, &pods[0]); !strings.Contains(m, "request_total") {
			t.Errorf("manually injected proxy exposes no request_total:\n%s", tail(m, 2000))
		}
	})
}

// grepLines returns the lines of s that start with one of the prefixes.
func grepLines(s string, prefixes ...string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(line, p) {
				out = append(out, line)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// scrape reads a proxy's /metrics once.
func scrape(ctx context.Context, ip string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s:4191/metrics", ip), nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return b.String(), nil
}

// sampleValue is the value of the unlabelled sample name in metrics (-1 when absent).
func sampleValue(metrics, name string) float64 {
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// checkCertificate asserts that a meshed pod's proxy holds a certificate: one successful
// refresh, and an expiry in the future within the default issuance lifetime (24h).
func checkCertificate(t *testing.T, p *corev1.Pod) {
	t.Helper()
	m := metricsOf(t, p)
	exp := sampleValue(m, "identity_cert_expiration_timestamp_seconds")
	now := float64(time.Now().Unix())
	if exp <= now || exp > now+25*3600 {
		t.Errorf("pod %s/%s: identity_cert_expiration_timestamp_seconds = %v, want within 24h from now (%v):\n%s", p.Namespace, p.Name, exp, now, grepLines(m, "identity_cert"))
	}
	if n := sampleValue(m, "identity_cert_refresh_total"); n < 1 {
		t.Errorf("pod %s/%s: identity_cert_refresh_total = %v, want at least 1", p.Namespace, p.Name, n)
	}
}
