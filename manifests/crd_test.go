package manifests

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from golden; run go test ./manifests -update and review the diff", name)
	}
}

func TestServiceProfileCRDGolden(t *testing.T) {
	out, err := ServiceProfileCRD()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "serviceprofile-crd.yaml", out)
}

// TestServiceProfileCRDValidatesNesting checks the schema really descends into
// nested conditions up to conditionDepth and then stops validating.
func TestServiceProfileCRDValidatesNesting(t *testing.T) {
	out, err := ServiceProfileCRD()
	if err != nil {
		t.Fatal(err)
	}
	var crd map[string]any
	if err := yaml.Unmarshal(out, &crd); err != nil {
		t.Fatal(err)
	}
	cond := dig(t, crd, "spec", "versions", 0, "schema", "openAPIV3Schema", "properties", "spec", "properties",
		"routes", "items", "properties", "condition")
	for level := 1; level < conditionDepth; level++ {
		if dig(t, cond, "properties", "pathRegex", "type") != "string" {
			t.Fatalf("level %d: pathRegex not validated", level)
		}
		cond = dig(t, cond, "properties", "all", "items").(map[string]any)
	}
	if dig(t, cond, "properties", "all", "items", "x-kubernetes-preserve-unknown-fields") != true {
		t.Fatal("deepest level should accept any object")
	}
}

func dig(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %q: not an object", k)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || len(l) <= k {
				t.Fatalf("at [%d]: not a list", k)
			}
			v = l[k]
		}
	}
	return v
}
