package cluster

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// apiserverURL is how clients on this machine reach the apiserver.
var apiserverURL = fmt.Sprintf("https://127.0.0.1:%d", APIServerPort)

// writeKubeconfig writes a kubeconfig for the user whose certificate is <pki>/<certName>.crt,
// with the certificates embedded so the file stands alone.
func writeKubeconfig(path, pkiDir, user, certName string) error {
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(pkiDir, name))
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
		}
		return b, nil
	}
	ca, err := read(caName + ".crt")
	if err != nil {
		return err
	}
	crt, err := read(certName + ".crt")
	if err != nil {
		return err
	}
	key, err := read(certName + ".key")
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[ClusterName] = &clientcmdapi.Cluster{Server: apiserverURL, CertificateAuthorityData: ca}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: crt, ClientKeyData: key}
	cfg.Contexts[ClusterName] = &clientcmdapi.Context{Cluster: ClusterName, AuthInfo: user}
	cfg.CurrentContext = ClusterName
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return os.Chmod(path, 0o600)
}

// restConfig loads a kubeconfig with rates high enough for tests.
func restConfig(path string) (*rest.Config, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", path, err)
	}
	rc.QPS, rc.Burst = 100, 200
	return rc, nil
}
