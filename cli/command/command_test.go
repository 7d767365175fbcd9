package command

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/weftmesh/weft/internal/kubeclient"
	"github.com/weftmesh/weft/internal/version"
)

var update = flag.Bool("update", false, "rewrite golden files")

// pkiDir is the fixed test PKI shared with the manifests tests.
var pkiDir = filepath.Join("..", "..", "manifests", "testdata", "pki")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from golden; run go test ./cli/command -update and review the diff", name)
	}
}

type fixedGenerator struct{ t *testing.T }

func (g fixedGenerator) read(name string) []byte {
	b, err := os.ReadFile(filepath.Join(pkiDir, name))
	if err != nil {
		g.t.Fatal(err)
	}
	return b
}

func (g fixedGenerator) Identity(string) ([]byte, []byte, []byte, error) {
	return g.read("trust-anchors.pem"), g.read("issuer.crt"), g.read("issuer.key"), nil
}

func (g fixedGenerator) Webhook([]string) ([]byte, []byte, []byte, error) {
	return g.read("webhook-ca.crt"), g.read("webhook.crt"), g.read("webhook.key"), nil
}

// cluster is a fake cluster: withCRDs serves weft.io/v1alpha1.
func cluster(withCRDs bool, objs ...runtime.Object) *fake.Clientset {
	cs := fake.NewClientset(objs...)
	if withCRDs {
		cs.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{
			GroupVersion: "weft.io/v1alpha1",
			APIResources: []metav1.APIResource{{Name: "serviceprofiles", Namespaced: true, Kind: "ServiceProfile"}},
		}}
	}
	return cs
}

// run executes weft with args against cs (nil: the cluster is unreachable).
func run(t *testing.T, cs kubernetes.Interface, args ...string) (string, error) {
	t.Helper()
	old := version.Version
	version.Version = "v0.0.0-test"
	t.Cleanup(func() { version.Version = old })
	var out, errOut bytes.Buffer
	root := NewRoot(Config{
		Out: &out, Err: &errOut,
		NewClient: func(kubeclient.Options) (kubernetes.Interface, error) {
			if cs == nil {
				return nil, errFakeUnreachable
			}
			return cs, nil
		},
		Generator: fixedGenerator{t},
		CRDWait:   200 * time.Millisecond,
		Now:       time.Now,
	})
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return out.String(), err
}

type unreachableError struct{}

func (unreachableError) Error() string {
	return `Get "https://127.0.0.1:1/api": dial tcp 127.0.0.1:1: connect: connection refused`
}

var errFakeUnreachable = unreachableError{}

func TestInstallGolden(t *testing.T) {
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"install.yaml", []string{"install"}},
		{"install-crds.yaml", []string{"install", "--crds"}},
		{"install-ha.yaml", []string{"install", "--ha"}},
		{"install-custom.yaml", []string{"install", "--weft-namespace", "mesh-system", "--identity-trust-domain", "example.org",
			"--identity-issuance-lifetime", "2h", "--cluster-domain", "k8s.example", "--proxy-image", "registry.example/weft/proxy",
			"--proxy-version", "v9.9.9", "--proxy-log-level", "debug", "--default-inbound-policy", "all-authenticated",
			"--proxy-cpu-limit", "1", "--proxy-memory-limit", "", "--controller-image", "registry.example/weft/controller",
			"--controller-version", "v9.9.9", "--controller-replicas", "2", "--webhook-failure-policy", "Fail",
			"--proxy-shutdown-grace-period", "45s"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			out, err := run(t, cluster(true), tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.golden, []byte(out))
		})
	}
}

// TestInstallIdentityFiles: given files are used as they are, not regenerated.
func TestInstallIdentityFiles(t *testing.T) {
	anchors := filepath.Join(pkiDir, "trust-anchors.pem")
	out, err := run(t, cluster(true), "install", "--identity-trust-anchors-file", anchors,
		"--identity-issuer-certificate-file", filepath.Join(pkiDir, "issuer.crt"),
		"--identity-issuer-key-file", filepath.Join(pkiDir, "issuer.key"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Fatal("install with the fixture files differs from the generated install with the same PKI")
	}
}

func TestInstallErrors(t *testing.T) {
	tmp := t.TempDir()
	bad := filepath.Join(tmp, "bad.pem")
	if err := os.WriteFile(bad, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	pki := func(n string) string { return filepath.Join(pkiDir, n) }
	installed := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "weft-config", Namespace: "weft"}}
	for _, tc := range []struct {
		name string
		cs   kubernetes.Interface
		args []string
		want string
	}{
		{"trust domain", cluster(true), []string{"install", "--identity-trust-domain", "Not A Domain"}, `invalid install flags: trust domain "Not A Domain" is not a DNS name`},
		{"namespace", cluster(true), []string{"install", "--weft-namespace", "kube-system"}, `control plane namespace "kube-system" is reserved`},
		{"failure policy", cluster(true), []string{"install", "--webhook-failure-policy", "sometimes"}, `webhook failure policy "sometimes" is not Ignore or Fail`},
		{"log level", cluster(true), []string{"install", "--proxy-log-level", "trace"}, `log level "trace" is not one of debug, info, warn, error`},
		{"policy", cluster(true), []string{"install", "--default-inbound-policy", "deny"}, `default inbound policy "deny" is not all-unauthenticated or all-authenticated`},
		{"quantity", cluster(true), []string{"install", "--proxy-memory-limit", "much"}, `proxy memory limit "much" is not a Kubernetes quantity`},
		{"lifetime", cluster(true), []string{"install", "--identity-issuance-lifetime", "1s"}, "identity issuance lifetime 1s is shorter than one minute"},
		{"duration syntax", cluster(true), []string{"install", "--identity-issuance-lifetime", "1 day"}, `invalid argument "1 day" for "--identity-issuance-lifetime"`},
		{"args", cluster(true), []string{"install", "extra"}, `unknown command "extra" for "weft install"`},
		{"partial files", cluster(true), []string{"install", "--identity-trust-anchors-file", pki("trust-anchors.pem")}, "go together: give all three or none"},
		{"missing file", cluster(true), []string{"install", "--identity-trust-anchors-file", filepath.Join(tmp, "nope"),
			"--identity-issuer-certificate-file", pki("issuer.crt"), "--identity-issuer-key-file", pki("issuer.key")}, "read --identity-trust-anchors-file: open"},
		{"bad anchors", cluster(true), []string{"install", "--identity-trust-anchors-file", bad,
			"--identity-issuer-certificate-file", pki("issuer.crt"), "--identity-issuer-key-file", pki("issuer.key")}, "identity certificates: trust anchors: no PEM CERTIFICATE block found"},
		{"key mismatch", cluster(true), []string{"install", "--identity-trust-anchors-file", pki("trust-anchors.pem"),
			"--identity-issuer-certificate-file", pki("issuer.crt"), "--identity-issuer-key-file", pki("webhook.key")}, "issuer key does not match the issuer certificate"},
		{"wrong anchor", cluster(true), []string{"install", "--identity-trust-anchors-file", pki("webhook-ca.crt"),
			"--identity-issuer-certificate-file", pki("issuer.crt"), "--identity-issuer-key-file", pki("issuer.key")}, "does not chain to the trust anchors"},
		{"crds missing", cluster(false), []string{"install"}, "the weft CRDs are not installed (API weft.io/v1alpha1 not served); run `weft install --crds | kubectl apply -f -` first"},
		{"already installed", cluster(true, installed), []string{"install"}, "weft is already installed in namespace weft (found ConfigMap weft/weft-config)"},
		{"unreachable", nil, []string{"install"}, "cannot check the cluster before installing: Get \"https://127.0.0.1:1/api\""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, tc.cs, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v\nwant it to contain %q", err, tc.want)
			}
			if out != "" {
				t.Fatalf("printed manifests despite the error:\n%.200s", out)
			}
		})
	}
}

// TestInstallIgnoreCluster: the refusals are lifted, and the cluster is
// never contacted.
func TestInstallIgnoreCluster(t *testing.T) {
	installed := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "weft-config", Namespace: "weft"}}
	for name, cs := range map[string]*fake.Clientset{
		"crds missing":      cluster(false),
		"already installed": cluster(true, installed),
	} {
		t.Run(name, func(t *testing.T) {
			out, err := run(t, cs, "install", "--ignore-cluster")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "kind: MutatingWebhookConfiguration") {
				t.Fatal("no control plane rendered")
			}
			if n := len(cs.Actions()); n != 0 {
				t.Fatalf("--ignore-cluster made %d requests: %v", n, cs.Actions())
			}
		})
	}
	if _, err := run(t, nil, "install", "--ignore-cluster"); err != nil {
		t.Fatalf("unreachable cluster with --ignore-cluster: %v", err)
	}
}

// TestInstallOtherNamespace: an install in weft does not block one in another namespace.
func TestInstallOtherNamespace(t *testing.T) {
	installed := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "weft-config", Namespace: "weft"}}
	if _, err := run(t, cluster(true, installed), "install", "--weft-namespace", "weft-canary"); err != nil {
		t.Fatal(err)
	}
}

func TestUninstallGolden(t *testing.T) {
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"uninstall.yaml", []string{"uninstall"}},
		{"uninstall-keep-crds.yaml", []string{"uninstall", "--keep-crds", "--weft-namespace", "mesh-system"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			out, err := run(t, nil, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.golden, []byte(out))
		})
	}
}

func deploymentAt(ns, comp, image string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "weft-" + comp, Namespace: ns, Labels: map[string]string{
			"weft.io/control-plane-ns": ns, "weft.io/control-plane-component": comp,
		}},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "weft-proxy", Image: "weft/proxy:v1.0.0"},
			{Name: comp, Image: image},
		}}}},
	}
}

func TestVersion(t *testing.T) {
	for _, tc := range []struct {
		name string
		cs   kubernetes.Interface
		args []string
		want string
	}{
		{"client only", nil, []string{"version", "--client"}, "Client version: v0.0.0-test\n"},
		{"unreachable", nil, []string{"version"}, "Client version: v0.0.0-test\nServer version: unavailable (Get \"https://127.0.0.1:1/api\": dial tcp 127.0.0.1:1: connect: connection refused)\n"},
		{"not installed", cluster(true), []string{"version"}, "Client version: v0.0.0-test\nServer version: unavailable (no weft control plane in namespace weft)\n"},
		{"installed", cluster(true,
			deploymentAt("weft", "identity", "weft/controller:v1.2.3"),
			deploymentAt("weft", "destination", "registry.example:5000/weft/controller:v1.2.3"),
			deploymentAt("weft", "proxy-injector", "weft/controller:v1.2.3"),
			deploymentAt("other", "identity", "weft/controller:v0.1.0")),
			[]string{"version"}, "Client version: v0.0.0-test\nServer version: v1.2.3\n"},
		{"upgrade in progress", cluster(true,
			deploymentAt("weft", "identity", "weft/controller:v1.2.3"),
			deploymentAt("weft", "destination", "weft/controller:v1.3.0")),
			[]string{"version"}, "Client version: v0.0.0-test\nServer version: destination=v1.3.0, identity=v1.2.3\n"},
		{"other namespace", cluster(true, deploymentAt("other", "identity", "weft/controller:v0.1.0")),
			[]string{"version", "--weft-namespace", "other"}, "Client version: v0.0.0-test\nServer version: v0.1.0\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, tc.cs, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if out != tc.want {
				t.Fatalf("output:\n%s\nwant:\n%s", out, tc.want)
			}
		})
	}
}

// TestVersionRealClientUnreachable goes through the default client: a
// kubeconfig pointing at a closed loopback port gives "unavailable" quickly.
func TestVersionRealClientUnreachable(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: ctx, context: {cluster: c, user: u}}]
current-context: ctx
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	root := NewRoot(Config{Out: &out, Err: &out})
	root.SetArgs([]string{"version", "--kubeconfig", kc})
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Server version: unavailable (") || !strings.Contains(out.String(), "127.0.0.1:1") {
		t.Fatalf("output: %s", out.String())
	}
	root = NewRoot(Config{Out: &out, Err: &out})
	root.SetArgs([]string{"version", "--kubeconfig", kc, "--context", "missing"})
	out.Reset()
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `context "missing" does not exist`) {
		t.Fatalf("--context not honoured: %s", out.String())
	}
}

func TestGlobalFlags(t *testing.T) {
	root := NewRoot(Config{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
	for _, name := range []string{"kubeconfig", "context", "namespace", "weft-namespace"} {
		if root.PersistentFlags().Lookup(name) == nil {
			t.Errorf("global flag --%s missing", name)
		}
	}
	if f := root.PersistentFlags().ShorthandLookup("n"); f == nil || f.Name != "namespace" {
		t.Error("-n is not --namespace")
	}
}
