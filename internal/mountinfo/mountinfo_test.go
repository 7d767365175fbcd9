package mountinfo

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestUnescape(t *testing.T) {
	t.Parallel()
	tests := map[string]string{`/a/b`: "/a/b", `/a\040b`: "/a b", `/x\134y`: `/x\y`}
	for in, want := range tests {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestIsUnder(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		p, dir string
		want   bool
	}{{"/a/b", "/a", true}, {"/a", "/a/", true}, {"/ab", "/a", false}, {"/", "/a", false}} {
		if got := IsUnder(tt.p, tt.dir); got != tt.want {
			t.Errorf("IsUnder(%q, %q) = %v", tt.p, tt.dir, got)
		}
	}
}

// TestUnmountUnder bind-mounts a tree (root: the tests run as root) and
// removes it deepest first.
func TestUnmountUnder(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	outer := filepath.Join(dir, "mnt", "outer")
	inner := filepath.Join(outer, "inner")
	for _, d := range []string{src, outer} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount(src, outer, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	if err := os.MkdirAll(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(src, inner, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("nested bind mount: %v", err)
	}
	t.Cleanup(func() { _ = UnmountUnder(dir) })
	if got, err := Under(dir); err != nil || len(got) != 2 {
		t.Fatalf("Under = %v, %v; want the two mounts", got, err)
	}
	if err := UnmountUnder(filepath.Join(dir, "mnt")); err != nil {
		t.Fatal(err)
	}
	if got, _ := Under(dir); len(got) != 0 {
		t.Fatalf("still mounted: %v", got)
	}
}
