package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

func httpGet(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

// etcdHealthy asks etcd's /health endpoint.
func etcdHealthy(ctx context.Context) error {
	body, err := httpGet(ctx, &http.Client{Transport: &http.Transport{Proxy: nil}}, fmt.Sprintf("http://127.0.0.1:%d/health", EtcdClientPort))
	if err != nil {
		return err
	}
	if !strings.Contains(body, `"health":"true"`) {
		return fmt.Errorf("etcd unhealthy: %s", strings.TrimSpace(body))
	}
	return nil
}

// apiserverReady asks the apiserver's /readyz with the admin credentials.
func apiserverReady(ctx context.Context, rc *rest.Config) error {
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("apiserver /readyz: %w", err)
	}
	if strings.TrimSpace(string(body)) != "ok" {
		return fmt.Errorf("apiserver /readyz: %s", body)
	}
	return nil
}

// kcmHealthy asks the controller manager's /healthz (serving cert signed by the cluster CA).
func kcmHealthy(ctx context.Context, p paths) error {
	ca, err := os.ReadFile(filepath.Join(p.pki, caName+".crt"))
	if err != nil {
		return fmt.Errorf("read CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	_, err = httpGet(ctx, client, fmt.Sprintf("https://127.0.0.1:%d/healthz", KCMPort))
	return err
}
