package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveCommand(t *testing.T) {
	bin := t.TempDir()
	for _, n := range []string{"weft-proxy", "weft-controller", "demo-web", "weft-testapp"} {
		if err := os.WriteFile(filepath.Join(bin, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hostPath := "/usr/sbin:/usr/bin:/sbin:/bin"
	sh, err := lookPath("sh", hostPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, image   string
		command, args []string
		wantPath      string
		wantArgv      []string
		wantErr       string
		imageErr      bool
	}{
		{"entrypoint", "weft/proxy:v1", nil, nil, filepath.Join(bin, "weft-proxy"), []string{"weft-proxy"}, "", false},
		{"args only", "weft/proxy:latest", nil, []string{"init"}, filepath.Join(bin, "weft-proxy"), []string{"weft-proxy", "init"}, "", false},
		{"command is binary name", "weft/controller:v2", []string{"weft-controller"}, []string{"destination"}, filepath.Join(bin, "weft-controller"), []string{"weft-controller", "destination"}, "", false},
		{"command is /binary", "weft/controller", []string{"/weft-controller", "identity"}, nil, filepath.Join(bin, "weft-controller"), []string{"/weft-controller", "identity"}, "", false},
		{"demo", "docker.io/weft/demo-web:dev@sha256:abc", nil, nil, filepath.Join(bin, "demo-web"), []string{"demo-web"}, "", false},
		{"testapp other command on PATH", "weft/testapp", []string{"sh", "-c", "true"}, nil, sh, []string{"sh", "-c", "true"}, "", false},
		{"toolbox", "weft/toolbox:1", []string{"sh"}, []string{"-c", "id"}, sh, []string{"sh", "-c", "id"}, "", false},
		{"toolbox without command", "weft/toolbox", nil, nil, "", nil, "needs a command", false},
		{"unknown image", "nginx:1.27", nil, nil, "", nil, `image "nginx:1.27" is not in the local image table`, true},
		{"missing binary", "weft/demo-nothere:v1", nil, nil, "", nil, filepath.Join(bin, "demo-nothere"), true},
		{"command not on PATH", "weft/toolbox", []string{"no-such-cmd-wrt"}, nil, "", nil, `"no-such-cmd-wrt"`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, argv, err := resolveCommand(bin, tc.image, tc.command, tc.args, hostPath)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				if errors.Is(err, ErrImage) != tc.imageErr {
					t.Fatalf("errors.Is(err, ErrImage) = %v, want %v", !tc.imageErr, tc.imageErr)
				}
				return
			}
			if err != nil || p != tc.wantPath || strings.Join(argv, " ") != strings.Join(tc.wantArgv, " ") {
				t.Fatalf("got %s %q %v, want %s %q", p, argv, err, tc.wantPath, tc.wantArgv)
			}
		})
	}
}

func TestStartUnknownImage(t *testing.T) {
	rt := newTestRuntime(t, nil)
	sb := createSandbox(t, rt, testPod("img"))
	_, err := sb.Start(context.Background(), ContainerSpec{Name: "c", Image: "nginx:latest"})
	if !errors.Is(err, ErrImage) || !strings.Contains(err.Error(), "nginx:latest") {
		t.Fatalf("Start with unknown image: %v, want ErrImage naming the image", err)
	}
	_, err = sb.Start(context.Background(), ContainerSpec{Name: "c", Image: "weft/proxy:latest"})
	if !errors.Is(err, ErrImage) || !strings.Contains(err.Error(), filepath.Join(testBinDir, "weft-proxy")) {
		t.Fatalf("Start with missing binary: %v, want ErrImage naming the binary path", err)
	}
	// A failure inside the launcher (before execve) is reported by Start too.
	_, err = sb.Start(context.Background(), ContainerSpec{Name: "c", Image: "weft/testapp", WorkingDir: "/no/such/dir"})
	if err == nil || !strings.Contains(err.Error(), "chdir /no/such/dir") {
		t.Fatalf("Start with a bad workingDir: %v", err)
	}
}
