package cluster

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"k8s.io/client-go/util/keyutil"
)

func loadPool(t *testing.T, dir, name string) *x509.CertPool {
	t.Helper()
	ca, err := readCert(filepath.Join(dir, name+".crt"))
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatalf("%s: IsCA=%v KeyUsage=%v, want a signing CA", name, ca.IsCA, ca.KeyUsage)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool
}

func TestPKIChainsSANsAndUsages(t *testing.T) {
	dir := t.TempDir()
	if err := ensurePKI(dir); err != nil {
		t.Fatal(err)
	}
	roots := map[string]*x509.CertPool{caName: loadPool(t, dir, caName), frontProxyCAName: loadPool(t, dir, frontProxyCAName)}
	tests := []struct {
		name   string
		signer string
		usage  x509.ExtKeyUsage
		cn     string
		orgs   []string
		dns    string // a name the cert must verify for ("" for client certs)
		ips    []string
	}{
		{apiserverName, caName, x509.ExtKeyUsageServerAuth, "kube-apiserver", nil, "kubernetes.default.svc.cluster.local", []string{"127.0.0.1", "198.18.0.1", "198.19.0.1"}},
		{kcmServingName, caName, x509.ExtKeyUsageServerAuth, "kube-controller-manager", nil, "localhost", []string{"127.0.0.1"}},
		{adminName, caName, x509.ExtKeyUsageClientAuth, "weft-admin", []string{"system:masters"}, "", nil},
		{kcmName, caName, x509.ExtKeyUsageClientAuth, "system:kube-controller-manager", nil, "", nil},
		{kubeletClientName, caName, x509.ExtKeyUsageClientAuth, "kube-apiserver-kubelet-client", []string{"system:masters"}, "", nil},
		{frontProxyName, frontProxyCAName, x509.ExtKeyUsageClientAuth, "front-proxy-client", nil, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := readCert(filepath.Join(dir, tt.name+".crt"))
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject.CommonName != tt.cn || !slices.Equal(c.Subject.Organization, tt.orgs) {
				t.Errorf("subject CN=%q O=%v, want CN=%q O=%v", c.Subject.CommonName, c.Subject.Organization, tt.cn, tt.orgs)
			}
			if c.IsCA {
				t.Error("leaf certificate is a CA")
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots[tt.signer], KeyUsages: []x509.ExtKeyUsage{tt.usage}, DNSName: tt.dns}); err != nil {
				t.Errorf("verify against %s: %v", tt.signer, err)
			}
			// The other usage must not verify: serving certs are not client certs and vice versa.
			other := x509.ExtKeyUsageClientAuth
			if tt.usage == x509.ExtKeyUsageClientAuth {
				other = x509.ExtKeyUsageServerAuth
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots[tt.signer], KeyUsages: []x509.ExtKeyUsage{other}}); err == nil {
				t.Errorf("certificate also verifies for usage %v", other)
			}
			for _, ip := range tt.ips {
				if err := c.VerifyHostname(ip); err != nil {
					t.Errorf("SAN %s: %v", ip, err)
				}
			}
			// The key on disk belongs to the certificate.
			if _, err := tls.LoadX509KeyPair(filepath.Join(dir, tt.name+".crt"), filepath.Join(dir, tt.name+".key")); err != nil {
				t.Error(err)
			}
		})
	}
	t.Run("apiserver DNS names", func(t *testing.T) {
		c, err := readCert(filepath.Join(dir, apiserverName+".crt"))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"} {
			if err := c.VerifyHostname(n); err != nil {
				t.Errorf("%s: %v", n, err)
			}
		}
		if err := c.VerifyHostname("198.18.0.2"); err == nil {
			t.Error("apiserver cert valid for an unexpected address 198.18.0.2")
		}
		if !slices.ContainsFunc(c.IPAddresses, func(ip net.IP) bool { return ip.Equal(net.ParseIP(KubernetesSvc)) }) {
			t.Error("kubernetes Service ClusterIP missing from SANs")
		}
	})
	t.Run("service-account key pair", func(t *testing.T) {
		priv, err := keyutil.PrivateKeyFromFile(filepath.Join(dir, saKeyName+".key"))
		if err != nil {
			t.Fatal(err)
		}
		pubs, err := keyutil.PublicKeysFromFile(filepath.Join(dir, saKeyName+".pub"))
		if err != nil || len(pubs) != 1 {
			t.Fatalf("public keys: %v (%d)", err, len(pubs))
		}
		signer, ok := priv.(crypto.Signer)
		if !ok {
			t.Fatalf("sa.key is a %T, not a signing key", priv)
		}
		if !signer.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(pubs[0]) {
			t.Error("sa.pub does not match sa.key")
		}
	})
}

func TestPKIIsGeneratedOnce(t *testing.T) {
	dir := t.TempDir()
	if err := ensurePKI(dir); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(dir, caName+".crt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ensurePKI(dir); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, caName+".crt"))
	if !bytes.Equal(before, after) {
		t.Error("second ensurePKI replaced a complete PKI")
	}
	// A missing file makes the whole set regenerate, keeping every chain consistent.
	if err := os.Remove(filepath.Join(dir, adminName+".key")); err != nil {
		t.Fatal(err)
	}
	if err := ensurePKI(dir); err != nil {
		t.Fatal(err)
	}
	regenerated, _ := os.ReadFile(filepath.Join(dir, caName+".crt"))
	if bytes.Equal(before, regenerated) {
		t.Error("incomplete PKI was not regenerated")
	}
	if !pkiComplete(dir) {
		t.Error("regenerated PKI incomplete")
	}
	info, err := os.Stat(filepath.Join(dir, caName+".key"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode %v, want 0600", info.Mode().Perm())
	}
}
