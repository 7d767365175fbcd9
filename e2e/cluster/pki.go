package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names inside the pki directory.
const (
	caName            = "ca"                        // cluster CA (client certs, serving certs, CSR signing)
	apiserverName     = "apiserver"                 // apiserver serving cert
	kubeletClientName = "apiserver-kubelet-client"  // apiserver → node agent client cert
	frontProxyCAName  = "front-proxy-ca"            // requestheader CA for the aggregator
	frontProxyName    = "front-proxy-client"        // aggregator → extension apiserver client cert
	adminName         = "admin"                     // weft-admin, system:masters
	kcmName           = "controller-manager"        // system:kube-controller-manager client cert
	kcmServingName    = "controller-manager-server" // KCM serving cert on 127.0.0.1:10257
	saKeyName         = "sa"                        // service-account signing key (sa.key, sa.pub)
	kubeletName       = "kubelet"                   // node agent's kubelet API serving cert on AdvertiseAddr:10250
)

const certValidity = 10 * 365 * 24 * time.Hour

// apiserverSANs are the names and addresses the apiserver serving certificate is valid for.
var (
	apiserverDNSNames = []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + ClusterDomain}
	apiserverIPs      = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(AdvertiseAddr), net.ParseIP(KubernetesSvc)}
)

// keyPair is a certificate with its private key.
type keyPair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// certSpec describes one leaf certificate.
type certSpec struct {
	name   string // file base name
	cn     string
	orgs   []string
	usages []x509.ExtKeyUsage
	dns    []string
	ips    []net.IP
	signer string // caName or frontProxyCAName
}

func leafSpecs() []certSpec {
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	server := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	return []certSpec{
		{name: apiserverName, cn: "kube-apiserver", usages: server, dns: apiserverDNSNames, ips: apiserverIPs, signer: caName},
		{name: kubeletClientName, cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}, usages: client, signer: caName},
		{name: adminName, cn: AdminUser, orgs: []string{"system:masters"}, usages: client, signer: caName},
		{name: kcmName, cn: "system:kube-controller-manager", usages: client, signer: caName},
		{name: kcmServingName, cn: "kube-controller-manager", usages: server, dns: []string{"localhost"}, ips: []net.IP{net.ParseIP("127.0.0.1")}, signer: caName},
		{name: kubeletName, cn: "system:node:" + NodeName, orgs: []string{"system:nodes"}, usages: server, dns: []string{NodeName, "localhost"}, ips: []net.IP{net.ParseIP(AdvertiseAddr), net.ParseIP("127.0.0.1")}, signer: caName},
		{name: frontProxyName, cn: "front-proxy-client", usages: client, signer: frontProxyCAName},
	}
}

// pkiFiles lists every file ensurePKI writes, relative to the pki directory.
func pkiFiles() []string {
	files := []string{caName + ".crt", caName + ".key", frontProxyCAName + ".crt", frontProxyCAName + ".key", saKeyName + ".key", saKeyName + ".pub"}
	for _, s := range leafSpecs() {
		files = append(files, s.name+".crt", s.name+".key")
	}
	return files
}

// ensurePKI generates the cluster's certificates and keys in dir unless a complete,
// valid set is already there.
func ensurePKI(dir string) error {
	if pkiComplete(dir) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create pki dir: %w", err)
	}
	cas := map[string]keyPair{}
	for _, name := range []string{caName, frontProxyCAName} {
		ca, err := newCA("weft-local-" + name)
		if err != nil {
			return fmt.Errorf("generate %s: %w", name, err)
		}
		if err := writeKeyPair(dir, name, ca); err != nil {
			return err
		}
		cas[name] = ca
	}
	for _, s := range leafSpecs() {
		kp, err := newLeaf(s, cas[s.signer])
		if err != nil {
			return fmt.Errorf("generate %s: %w", s.name, err)
		}
		if err := writeKeyPair(dir, s.name, kp); err != nil {
			return err
		}
	}
	sa, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate service-account key: %w", err)
	}
	if err := writeKey(filepath.Join(dir, saKeyName+".key"), sa); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return fmt.Errorf("marshal service-account public key: %w", err)
	}
	return writePEM(filepath.Join(dir, saKeyName+".pub"), "PUBLIC KEY", pub, 0o644)
}

// pkiComplete reports whether every file exists and every certificate is valid for at least a day.
func pkiComplete(dir string) bool {
	for _, f := range pkiFiles() {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	for _, name := range append([]string{caName, frontProxyCAName}, leafNames()...) {
		c, err := readCert(filepath.Join(dir, name+".crt"))
		if err != nil || time.Until(c.NotAfter) < 24*time.Hour {
			return false
		}
	}
	return true
}

func leafNames() []string {
	var n []string
	for _, s := range leafSpecs() {
		n = append(n, s.name)
	}
	return n
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func newCA(cn string) (keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keyPair{}, err
	}
	sn, err := serial()
	if err != nil {
		return keyPair{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	return sign(tmpl, key, tmpl, key)
}

func newLeaf(s certSpec, ca keyPair) (keyPair, error) {
	if ca.cert == nil {
		return keyPair{}, fmt.Errorf("unknown signer %q", s.signer)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keyPair{}, err
	}
	sn, err := serial()
	if err != nil {
		return keyPair{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: s.cn, Organization: s.orgs},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  s.usages,
		DNSNames:     s.dns,
		IPAddresses:  s.ips,
	}
	return sign(tmpl, key, ca.cert, ca.key)
}

func sign(tmpl *x509.Certificate, key *ecdsa.PrivateKey, parent *x509.Certificate, parentKey crypto.Signer) (keyPair, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return keyPair{}, fmt.Errorf("sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return keyPair{}, fmt.Errorf("parse certificate: %w", err)
	}
	return keyPair{cert: cert, key: key}, nil
}

func writeKeyPair(dir, name string, kp keyPair) error {
	if err := writeKey(filepath.Join(dir, name+".key"), kp.key); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, name+".crt"), "CERTIFICATE", kp.cert.Raw, 0o644)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal key %s: %w", path, err)
	}
	return writePEM(path, "EC PRIVATE KEY", der, 0o600)
}

// writePEM writes atomically (temp file + rename) so a crash never leaves half a key.
func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: %w", path, errors.New("no CERTIFICATE PEM block"))
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return c, nil
}
