package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Ensure fails before starting anything, naming the missing binary and the make target.
func TestEnsureMissingBinaries(t *testing.T) {
	fakeKube := func(t *testing.T, cache string) {
		t.Helper()
		dir := filepath.Join(cache, "kube", KubeVersion)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, b := range []string{apiserverComp, kcmComp} {
			if err := os.WriteFile(filepath.Join(dir, b), []byte("#!/bin/false\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name     string
		kube     bool // kube binaries present
		noNode   bool
		wantErr  string
		wantHint string
	}{
		{"no kube binaries", false, true, "kube-apiserver not found", "run make kube-bins"},
		{"no node agent", true, false, "weft-node not found", "run make build"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache, bin := t.TempDir(), t.TempDir()
			if tt.kube {
				fakeKube(t, cache)
			}
			_, err := Ensure(context.Background(), Config{CacheDir: cache, BinDir: bin, NoNode: tt.noNode})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.wantHint) {
				t.Fatalf("Ensure error = %v, want %q with hint %q", err, tt.wantErr, tt.wantHint)
			}
			if _, err := os.Stat(filepath.Join(cache, "cluster")); !os.IsNotExist(err) {
				t.Errorf("Ensure created state before failing: %v", err)
			}
		})
	}
}

// Down of a cluster that never ran succeeds and leaves nothing behind.
func TestDownIdempotentWithoutCluster(t *testing.T) {
	cache := t.TempDir()
	cfg := Config{CacheDir: cache, BinDir: t.TempDir()}
	for i := 0; i < 2; i++ {
		if err := Down(context.Background(), cfg); err != nil {
			t.Fatalf("Down #%d: %v", i+1, err)
		}
	}
	if _, err := os.Stat(filepath.Join(cache, "cluster")); !os.IsNotExist(err) {
		t.Errorf("cluster dir exists after Down: %v", err)
	}
}

func TestStatusOfStoppedCluster(t *testing.T) {
	r, err := Status(context.Background(), Config{CacheDir: t.TempDir(), BinDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if r.Healthy() || len(r.Components) != 4 {
		t.Fatalf("status = %+v, want 4 unhealthy components", r)
	}
	for _, c := range r.Components {
		if c.Pid != 0 || c.Detail != "not running" {
			t.Errorf("%s: pid %d detail %q, want not running", c.Name, c.Pid, c.Detail)
		}
	}
}
