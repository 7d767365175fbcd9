package kubeclient

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// isolate points every place client-go looks for configuration at an empty directory.
func isolate(t *testing.T) string {
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("KUBECONFIG", filepath.Join(dir, "missing-kubeconfig"))
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	return dir
}

func TestConfigNoCluster(t *testing.T) {
	dir := isolate(t)
	_, err := Config(Options{})
	if !errors.Is(err, ErrNoCluster) {
		t.Fatalf("Config = %v, want ErrNoCluster", err)
	}
	msg := err.Error()
	for _, want := range []string{"no cluster configured", "KUBECONFIG", "--kubeconfig", filepath.Join(dir, "missing-kubeconfig")} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "KUBERNETES_MASTER") {
		t.Errorf("error %q repeats client-go's KUBERNETES_MASTER hint", msg)
	}
	if _, err := Clientset(Options{}); !errors.Is(err, ErrNoCluster) {
		t.Errorf("Clientset = %v, want ErrNoCluster", err)
	}
}

func TestConfigExplicitKubeconfig(t *testing.T) {
	dir := isolate(t)
	path := filepath.Join(dir, "kubeconfig")
	kc := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Config(Options{Kubeconfig: path, UserAgent: "weft/test"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://127.0.0.1:6443" || cfg.UserAgent != "weft/test" {
		t.Errorf("Config = host %q agent %q", cfg.Host, cfg.UserAgent)
	}
	// A kubeconfig without a current context names no cluster either.
	if err := os.WriteFile(path, []byte(strings.Replace(kc, "current-context: x", "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Config(Options{Kubeconfig: path}); !errors.Is(err, ErrNoCluster) {
		t.Errorf("Config without current context = %v, want ErrNoCluster", err)
	}
}
