//go:build e2e

package tests

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/internal/annotations"
	"github.com/weftmesh/weft/internal/pki"
)

// runCheck runs `weft check args…` as a user types it and returns its
// stdout and exit code.
func (c *cli) runCheck(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	argv := append([]string{"weft", "check"}, args...)
	cmd := c.command(ctx, argv)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", strings.Join(argv, " "), err)
	}
	t.Logf("$ %s (exit %d)\n%s%s", strings.Join(argv, " "), code, out.String(), errOut.String())
	return out.String(), code
}

func wantCheck(t *testing.T, out string, code, wantCode int, wants ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("exit %d, want %d", code, wantCode)
	}
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
}

// TestCheck: `weft check --pre` before install, `weft check` and
// `weft check --proxy` after, then one broken thing at a time (restored
// afterwards) on the same install.
func TestCheck(t *testing.T) {
	c := newCLI(t)
	removeStaleInstalls(t, c)
	cpNS := installFlowPrefix + "check-" + randomSuffix(t)
	nsFlag := "--weft-namespace=" + cpNS
	t.Cleanup(func() {
		if t.Failed() {
			dumpNamespace(t, cpNS)
		}
		c.uninstall(t, cpNS)
	})

	out, code := c.runCheck(t, "--pre", nsFlag)
	wantCheck(t, out, code, 0, "√ can create every kind", "√ the control-plane namespace holds no weft yet")
	if t.Failed() {
		return
	}

	c.pipe(t, []string{"weft", "install", "--crds"}, []string{"kubectl", "apply", "-f", "-"})
	c.run(t, "", "kubectl", "wait", "--for", "condition=Established", "--timeout", "2m", "crd/serviceprofiles.weft.io")
	c.pipe(t, []string{"weft", "install", "--weft-namespace", cpNS}, []string{"kubectl", "apply", "-f", "-"})
	out, code = c.runCheck(t, nsFlag, "--wait", "3m")
	wantCheck(t, out, code, 0, "Status check results are √",
		"√ identity serves the issuer in the Secret",
		"√ the webhook's caBundle verifies the injector's certificate",
		"√ destination answers a real Get for a known Service",
		"√ destination answers a real GetProfile")
	if t.Failed() {
		return
	}

	appNS := newNamespace(t)
	ns, err := kube.CoreV1().Namespaces().Get(ctxFor(t, time.Minute), appNS, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Annotations = map[string]string{annotations.Inject: annotations.Enabled}
	if _, err := kube.CoreV1().Namespaces().Update(ctxFor(t, time.Minute), ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	web := testappPod("web", "http", "--addr", ":8080")
	web.Spec.RestartPolicy = corev1.RestartPolicyAlways
	createPod(t, appNS, web)
	out, code = c.runCheck(t, "--proxy", "-n", appNS, nsFlag, "--wait", "3m")
	wantCheck(t, out, code, 0, "√ meshed pods' proxies are ready", "√ proxies hold valid certificates",
		"√ proxies report no discovery errors")
	if t.Failed() {
		return
	}

	t.Run("identity-scaled-to-0", func(t *testing.T) {
		c.run(t, "", "kubectl", "-n", cpNS, "scale", "deployment", "weft-identity", "--replicas=0")
		defer func() {
			c.run(t, "", "kubectl", "-n", cpNS, "scale", "deployment", "weft-identity", "--replicas=1")
			waitDeployment(t, cpNS, "weft-identity")
		}()
		out, code := c.runCheck(t, nsFlag, "--wait", "20s")
		wantCheck(t, out, code, 1, "× identity is available", "kubectl -n "+cpNS+" scale deployment weft-identity --replicas=1", "see docs/checks.md#cp-identity-ready")
	})

	t.Run("expired-issuer", func(t *testing.T) {
		secrets := kube.CoreV1().Secrets(cpNS)
		orig, err := secrets.Get(ctxFor(t, time.Minute), "weft-identity-issuer", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		certPEM, keyPEM, nb, na := expiredIssuer(t)
		bad := orig.DeepCopy()
		bad.Data = map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}
		if _, err := secrets.Update(ctxFor(t, time.Minute), bad, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			cur, err := secrets.Get(ctxFor(t, time.Minute), orig.Name, metav1.GetOptions{})
			if err == nil {
				cur.Data = orig.Data
				_, err = secrets.Update(ctxFor(t, time.Minute), cur, metav1.UpdateOptions{})
			}
			if err != nil {
				t.Errorf("restore the issuer: %v", err)
			}
		}()
		out, code := c.runCheck(t, nsFlag, "--wait", "20s")
		wantCheck(t, out, code, 1, "× issuer chains to the anchors",
			"valid from "+nb.UTC().Format(time.RFC3339)+" until "+na.UTC().Format(time.RFC3339),
			// identity refuses the expired issuer and keeps signing with the
			// previous one, which its self-test reports
			"× identity serves the issuer in the Secret", "see docs/checks.md#identity-issuer-loaded")
	})

	t.Run("webhook-deleted", func(t *testing.T) {
		hooks := kube.AdmissionregistrationV1().MutatingWebhookConfigurations()
		name := "weft-" + cpNS + "-proxy-injector"
		orig, err := hooks.Get(ctxFor(t, time.Minute), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := hooks.Delete(ctxFor(t, time.Minute), name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			restore := orig.DeepCopy()
			restore.ResourceVersion, restore.UID = "", ""
			if _, err := hooks.Create(ctxFor(t, time.Minute), restore, metav1.CreateOptions{}); err != nil {
				t.Errorf("restore the webhook: %v", err)
			}
		}()
		out, code := c.runCheck(t, nsFlag, "--wait", "20s")
		wantCheck(t, out, code, 1, "× the webhook configuration exists", "MutatingWebhookConfiguration "+name+" not found")
	})

	t.Run("old-proxy-version", func(t *testing.T) {
		p, err := kube.CoreV1().Pods(appNS).Get(ctxFor(t, time.Minute), "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cur := p.Annotations[annotations.ProxyVersion]
		c.run(t, "", "kubectl", "-n", appNS, "annotate", "pod", "web", "--overwrite", annotations.ProxyVersion+"=v0.0.1")
		defer c.run(t, "", "kubectl", "-n", appNS, "annotate", "pod", "web", "--overwrite", annotations.ProxyVersion+"="+cur)
		out, code := c.runCheck(t, "--proxy", "-n", appNS, nsFlag, "--wait", "20s")
		wantCheck(t, out, code, 0, "‼ proxies run the control plane's version", "pod "+appNS+"/web runs proxy v0.0.1")
	})

	t.Run("unknown-image", func(t *testing.T) {
		p := testappPod("nope")
		p.Spec.Containers[0].Image = "weft/no-such-image:0"
		createPod(t, appNS, p)
		defer kube.CoreV1().Pods(appNS).Delete(context.Background(), "nope", metav1.DeleteOptions{})
		waitPod(t, appNS, "nope", "reports ErrImagePull", func(p *corev1.Pod) bool {
			for _, s := range p.Status.ContainerStatuses {
				if w := s.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") {
					return true
				}
			}
			return false
		})
		out, code := c.runCheck(t, "--proxy", "-n", appNS, nsFlag, "--wait", "2m")
		wantCheck(t, out, code, 1, "× meshed pods' proxies are ready", "pod "+appNS+"/nope container app: ")
		if strings.Contains(out, "timed out") {
			t.Errorf("the check waited instead of failing at once")
		}
	})
}

// expiredIssuer is a self-signed CA that expired a day ago.
func expiredIssuer(t *testing.T) (certPEM, keyPEM []byte, notBefore, notAfter time.Time) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	notBefore, notAfter = time.Now().Add(-48*time.Hour).Truncate(time.Second), time.Now().Add(-24*time.Hour).Truncate(time.Second)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "expired.issuer.weft.test"},
		NotBefore: notBefore, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if keyPEM, err = pki.EncodeKey(key); err != nil {
		t.Fatal(err)
	}
	return pki.EncodeCerts(cert), keyPEM, notBefore, notAfter
}
