package manifests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/weftmesh/weft/injector"
)

// fixedGenerator returns the committed test PKI (testdata/pki) so golden
// output is stable.
type fixedGenerator struct{ t *testing.T }

func (g fixedGenerator) read(name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", "pki", name))
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

func testValues() Values {
	v := DefaultValues()
	v.ControllerVersion = "v0.0.0-test"
	v.ProxyVersion = "v0.0.0-test"
	return v
}

func testCerts(t *testing.T, v *Values) *Certs {
	t.Helper()
	c, err := NewCerts(Certs{}, v, fixedGenerator{t}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// docs splits a rendered stream into its objects.
func docs(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for _, d := range regexp.MustCompile(`(?m)^---$`).Split(string(out), -1) {
		if strings.TrimSpace(d) == "" {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			t.Fatalf("document does not parse: %v\n%s", err, d)
		}
		objs = append(objs, m)
	}
	return objs
}

func find(t *testing.T, objs []map[string]any, kind, name string) map[string]any {
	t.Helper()
	for _, o := range objs {
		if o["kind"] == kind && dig(t, o, "metadata", "name") == name {
			return o
		}
	}
	t.Fatalf("no %s %s rendered", kind, name)
	return nil
}

func TestRenderGolden(t *testing.T) {
	ha := testValues()
	ha.HA = true
	custom := testValues()
	custom.ControlPlaneNamespace = "mesh-system"
	custom.TrustDomain = "example.org"
	custom.ClusterDomain = "k8s.example"
	custom.ProxyImage = "registry.example/weft/proxy"
	custom.ProxyVersion = "v9.9.9"
	custom.ControllerImage = "registry.example/weft/controller"
	custom.ControllerVersion = "v9.9.9"
	custom.LogLevel = "debug"
	custom.DefaultInboundPolicy = "all-authenticated"
	custom.IdentityIssuanceLifetime = 2 * time.Hour
	custom.WebhookFailurePolicy = "Fail"
	custom.ControllerReplicas = 2
	for _, tc := range []struct {
		golden string
		v      Values
	}{
		{"install.yaml", testValues()},
		{"install-ha.yaml", ha},
		{"install-custom.yaml", custom},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			out, err := Render(tc.v, testCerts(t, &tc.v))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tc.golden, out)
			again, err := Render(tc.v, testCerts(t, &tc.v))
			if err != nil || string(again) != string(out) {
				t.Fatalf("second render differs (err %v)", err)
			}
		})
	}
}

func TestRenderHA(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ha       bool
		replicas int32
		want     int
		pdbs     int
	}{
		{"default", false, 0, 1, 0},
		{"ha", true, 0, 3, 3},
		{"ha with replicas", true, 5, 5, 3},
		{"replicas only", false, 2, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := testValues()
			v.HA, v.ControllerReplicas = tc.ha, tc.replicas
			out, err := Render(v, testCerts(t, &v))
			if err != nil {
				t.Fatal(err)
			}
			objs := docs(t, out)
			pdbs := 0
			for _, o := range objs {
				switch o["kind"] {
				case "PodDisruptionBudget":
					pdbs++
				case "Deployment":
					if got := dig(t, o, "spec", "replicas"); got != float64(tc.want) {
						t.Errorf("%v replicas = %v, want %d", dig(t, o, "metadata", "name"), got, tc.want)
					}
				}
			}
			if pdbs != tc.pdbs {
				t.Errorf("%d PodDisruptionBudgets, want %d", pdbs, tc.pdbs)
			}
		})
	}
}

// TestRBACLeastPrivilege pins every rule: a new verb must be a conscious change.
func TestRBACLeastPrivilege(t *testing.T) {
	v := testValues()
	out, err := Render(v, testCerts(t, &v))
	if err != nil {
		t.Fatal(err)
	}
	objs := docs(t, out)
	var got []string
	for _, o := range objs {
		if o["kind"] != "ClusterRole" && o["kind"] != "Role" {
			continue
		}
		for _, r := range o["rules"].([]any) {
			rule := r.(map[string]any)
			b, _ := yaml.Marshal(rule)
			got = append(got, o["kind"].(string)+" "+dig(t, o, "metadata", "name").(string)+": "+strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", " "))
		}
	}
	want := []string{
		"ClusterRole weft-weft-identity: apiGroups: - authentication.k8s.io resources: - tokenreviews verbs: - create",
		"ClusterRole weft-weft-destination: apiGroups: - \"\" resources: - pods - services verbs: - get - list - watch",
		"ClusterRole weft-weft-destination: apiGroups: - discovery.k8s.io resources: - endpointslices verbs: - get - list - watch",
		"ClusterRole weft-weft-destination: apiGroups: - weft.io resources: - serviceprofiles verbs: - get - list - watch",
		"ClusterRole weft-weft-proxy-injector: apiGroups: - \"\" resources: - namespaces verbs: - get",
		"Role weft-identity: apiGroups: - \"\" resourceNames: - weft-identity-issuer resources: - secrets verbs: - get - list - watch",
		"Role weft-identity: apiGroups: - \"\" resourceNames: - weft-identity-trust-roots resources: - configmaps verbs: - get - list - watch",
		"Role weft-proxy-injector: apiGroups: - \"\" resourceNames: - weft-config resources: - configmaps verbs: - get",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("RBAC rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRenderWebhookAndConfig(t *testing.T) {
	v := testValues()
	v.ControlPlaneNamespace = "mesh"
	v.WebhookFailurePolicy = "Fail"
	c := testCerts(t, &v)
	out, err := Render(v, c)
	if err != nil {
		t.Fatal(err)
	}
	objs := docs(t, out)
	if objs[len(objs)-1]["kind"] != "MutatingWebhookConfiguration" {
		t.Fatal("the webhook must be the last object applied")
	}
	if objs[0]["kind"] != "Namespace" {
		t.Fatal("the namespace must be the first object applied")
	}
	wh := find(t, objs, "MutatingWebhookConfiguration", "weft-mesh-proxy-injector")
	hook := dig(t, wh, "webhooks", 0)
	if dig(t, hook, "failurePolicy") != "Fail" {
		t.Error("failurePolicy not applied")
	}
	if got := dig(t, hook, "namespaceSelector", "matchExpressions", 0, "values"); got.([]any)[1] != "mesh" || got.([]any)[0] != "kube-system" {
		t.Errorf("namespace exclusion = %v", got)
	}
	if dig(t, hook, "clientConfig", "service", "namespace") != "mesh" {
		t.Error("webhook service namespace")
	}
	cfg := find(t, objs, "ConfigMap", ConfigName)
	back, err := ParseConfig(map[string]string{ConfigValuesKey: dig(t, cfg, "data", ConfigValuesKey).(string)})
	if err != nil {
		t.Fatal(err)
	}
	if back.ControlPlaneNamespace != "mesh" || back.TrustAnchorsPEM != string(c.TrustAnchorsPEM) || back.WebhookFailurePolicy != "Fail" ||
		back.ShutdownGracePeriod != v.ShutdownGracePeriod || len(back.OpaquePorts) != len(v.OpaquePorts) {
		t.Fatalf("weft-config does not round-trip: %+v", back)
	}
	var inj injector.Values // what the injector reads
	if err := json.Unmarshal([]byte(dig(t, cfg, "data", ConfigValuesKey).(string)), &inj); err != nil || inj.TrustAnchorsPEM != string(c.TrustAnchorsPEM) {
		t.Fatalf("injector cannot read weft-config: %v", err)
	}
	if strings.Contains(dig(t, cfg, "data", ConfigValuesKey).(string), "PRIVATE KEY") {
		t.Fatal("weft-config holds a private key")
	}
}

func TestValuesValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Values)
		want string
	}{
		{"namespace", func(v *Values) { v.ControlPlaneNamespace = "Weft_NS" }, `control plane namespace "Weft_NS" is not a valid namespace name`},
		{"reserved namespace", func(v *Values) { v.ControlPlaneNamespace = "kube-system" }, `control plane namespace "kube-system" is reserved`},
		{"trust domain", func(v *Values) { v.TrustDomain = "not a domain" }, `trust domain "not a domain" is not a DNS name`},
		{"failure policy", func(v *Values) { v.WebhookFailurePolicy = "ignore" }, `webhook failure policy "ignore" is not Ignore or Fail`},
		{"quantity", func(v *Values) { v.CPURequest = "lots" }, `proxy cpu request "lots" is not a Kubernetes quantity`},
		{"lifetime", func(v *Values) { v.IdentityIssuanceLifetime = time.Second }, "identity issuance lifetime 1s is shorter than one minute"},
		{"log level", func(v *Values) { v.LogLevel = "loud" }, `log level "loud" is not one of`},
		{"policy", func(v *Values) { v.DefaultInboundPolicy = "deny" }, `default inbound policy "deny"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := testValues()
			tc.edit(&v)
			err := v.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
	v := testValues()
	if err := v.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}

func TestNewCerts(t *testing.T) {
	v := testValues()
	g := fixedGenerator{t}
	a, ic, ik, _ := g.Identity("")
	otherCA, _, otherKey, _ := g.Webhook(nil)
	for _, tc := range []struct {
		name string
		in   Certs
		want string
	}{
		{"generated", Certs{}, ""},
		{"given", Certs{TrustAnchorsPEM: a, IssuerCertPEM: ic, IssuerKeyPEM: ik}, ""},
		{"partial", Certs{TrustAnchorsPEM: a}, "go together"},
		{"wrong key", Certs{TrustAnchorsPEM: a, IssuerCertPEM: ic, IssuerKeyPEM: otherKey}, "issuer key does not match the issuer certificate"},
		{"other anchor", Certs{TrustAnchorsPEM: otherCA, IssuerCertPEM: ic, IssuerKeyPEM: ik}, "does not chain to the trust anchors"},
		{"garbage anchors", Certs{TrustAnchorsPEM: []byte("x"), IssuerCertPEM: ic, IssuerKeyPEM: ik}, "trust anchors: no PEM CERTIFICATE block found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewCerts(tc.in, &v, g, time.Now())
			if tc.want == "" {
				if err != nil || len(c.WebhookCertPEM) == 0 || len(c.IssuerKeyPEM) == 0 {
					t.Fatalf("NewCerts = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewCerts error = %v, want %q", err, tc.want)
			}
		})
	}
	// Expired: the fixture issuer is checked at a time past its NotAfter.
	if _, err := NewCerts(Certs{TrustAnchorsPEM: a, IssuerCertPEM: ic, IssuerKeyPEM: ik}, &v, g, time.Now().Add(100*365*24*time.Hour)); err == nil || !strings.Contains(err.Error(), "is valid from") {
		t.Fatalf("expired issuer: %v", err)
	}
}

func TestPKIGeneratorChains(t *testing.T) {
	v := testValues()
	c, err := NewCerts(Certs{}, &v, PKIGenerator{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifyIdentity(time.Now()); err != nil {
		t.Fatal(err)
	}
	other, err := NewCerts(Certs{}, &v, PKIGenerator{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if string(other.IssuerKeyPEM) == string(c.IssuerKeyPEM) {
		t.Fatal("two generations returned the same key")
	}
}

func TestUninstallGolden(t *testing.T) {
	v := testValues()
	out, err := Uninstall(v, true)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "uninstall.yaml", out)
	v.ControlPlaneNamespace = "Bad"
	if _, err := Uninstall(v, false); err == nil {
		t.Fatal("bad namespace accepted")
	}
}

// TestRenderMeshesControlPlane checks the bootstrap: every control-plane pod
// is rendered with its proxy; identity's proxy asks identity over loopback and
// does not hold identity's start.
func TestRenderMeshesControlPlane(t *testing.T) {
	v := testValues()
	out, err := Render(v, testCerts(t, &v))
	if err != nil {
		t.Fatal(err)
	}
	objs := docs(t, out)
	for _, name := range []string{IdentityName, DestinationName, InjectorName} {
		d := find(t, objs, "Deployment", name)
		tmpl := dig(t, d, "spec", "template").(map[string]any)
		if dig(t, tmpl, "metadata", "annotations", "weft.io/injected-by") != "cli" {
			t.Errorf("%s: not marked injected by the CLI", name)
		}
		var proxy map[string]any
		for _, list := range []string{"initContainers", "containers"} {
			cs, _ := dig(t, tmpl, "spec").(map[string]any)[list].([]any)
			for _, c := range cs {
				if c.(map[string]any)["name"] == "weft-proxy" {
					proxy = c.(map[string]any)
				}
			}
		}
		if proxy == nil {
			t.Fatalf("%s: no weft-proxy container", name)
		}
		addr := ""
		for _, e := range proxy["env"].([]any) {
			if e.(map[string]any)["name"] == "WEFT_PROXY_IDENTITY_SVC_ADDR" {
				addr = e.(map[string]any)["value"].(string)
			}
		}
		switch name {
		case IdentityName:
			if addr != "localhost:8080" {
				t.Errorf("identity's proxy asks %q, want localhost:8080", addr)
			}
			if _, ok := proxy["lifecycle"]; ok {
				t.Error("identity's proxy still holds the identity container's start")
			}
			if _, ok := proxy["restartPolicy"]; ok {
				t.Error("identity's proxy is a native sidecar; it would hold identity's start")
			}
		default:
			if addr != "weft-identity.weft.svc.cluster.local:8080" {
				t.Errorf("%s's proxy asks identity at %q", name, addr)
			}
		}
	}
}

// TestInjectorCanReadItsCertificate: the controller runs as a non-root user,
// so the mounted webhook Secret must be group-readable through fsGroup (a
// 0400 root-owned key made the injector crash in the local cluster).
func TestInjectorCanReadItsCertificate(t *testing.T) {
	v := testValues()
	out, err := Render(v, testCerts(t, &v))
	if err != nil {
		t.Fatal(err)
	}
	spec := dig(t, find(t, docs(t, out), "Deployment", InjectorName), "spec", "template", "spec")
	if dig(t, spec, "securityContext", "fsGroup") != float64(controllerUID) {
		t.Fatal("injector pod has no fsGroup for its Secret volume")
	}
	for _, vol := range dig(t, spec, "volumes").([]any) {
		if vol.(map[string]any)["name"] == "tls" && dig(t, vol, "secret", "defaultMode").(float64) != 0o440 {
			t.Fatalf("tls volume mode %v, want 0440", dig(t, vol, "secret", "defaultMode"))
		}
	}
}
