package injector

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func readInput(t *testing.T) []byte {
	t.Helper()
	in, err := os.ReadFile(filepath.Join("testdata", "manifests.in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestInjectManifestsGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode Mode
	}{{"annotate", Annotate}, {"manual", Manual}} {
		t.Run(tc.name, func(t *testing.T) {
			out, outcomes, err := InjectManifests(readInput(t), tc.mode, testValues())
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "manifests."+tc.name+".golden.yaml", out)
			var report []string
			for _, o := range outcomes {
				report = append(report, o.String())
			}
			golden(t, "manifests."+tc.name+".report.golden", []byte(strings.Join(report, "\n")+"\n"))
			if !strings.Contains(string(out), "name: web   # trailing comment") {
				t.Fatal("an untouched document was rewritten")
			}
		})
	}
}

func TestUninjectRestoresManualInjection(t *testing.T) {
	in := readInput(t)
	injected, _, err := InjectManifests(in, Manual, testValues())
	if err != nil {
		t.Fatal(err)
	}
	restored, outcomes, err := InjectManifests(injected, Uninject, testValues())
	if err != nil {
		t.Fatal(err)
	}
	changed := 0
	for _, o := range outcomes {
		if o.Changed {
			changed++
		}
	}
	if changed != 4 { // deployment, pod, cronjob, namespace
		t.Fatalf("uninject changed %d objects, want 4: %v", changed, outcomes)
	}
	want, got := docs(t, in), docs(t, restored)
	// The namespace keeps no annotations map after removal; normalise it.
	if !reflect.DeepEqual(normalise(want[:5]), normalise(got[:5])) {
		t.Fatalf("uninject did not restore the workloads:\n%s", restored)
	}
}

func docs(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, d := range docSeparator.Split(string(b), -1) {
		if strings.TrimSpace(d) == "" {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// normalise drops empty maps and zero-value fields that round-tripping
// through typed objects adds (e.g. resources: {}).
func normalise(v any) any {
	switch t := v.(type) {
	case []map[string]any:
		out := make([]any, len(t))
		for i, m := range t {
			out[i] = normalise(m)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, val := range t {
			n := normalise(val)
			if m, ok := n.(map[string]any); ok && len(m) == 0 {
				continue
			}
			out[k] = n
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = normalise(e)
		}
		return out
	}
	return v
}

func TestInjectManifestsErrors(t *testing.T) {
	t.Parallel()
	bad := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {}\n"
	if _, _, err := InjectManifests([]byte(bad), Manual, testValues()); err == nil || !strings.Contains(err.Error(), "deployment/x") {
		t.Fatalf("deployment without template: %v", err)
	}
	if _, _, err := InjectManifests([]byte("a: [unclosed"), Annotate, testValues()); err == nil || !strings.Contains(err.Error(), "document 1") {
		t.Fatalf("bad YAML: %v", err)
	}
	annotated := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations: {config.weft.io/skip-inbound-ports: http}\nspec:\n  containers: [{name: a, image: b}]\n"
	if _, _, err := InjectManifests([]byte(annotated), Manual, testValues()); err == nil || !strings.Contains(err.Error(), "skip-inbound-ports") {
		t.Fatalf("bad annotation: %v", err)
	}
}

func TestUninjectGolden(t *testing.T) {
	injected, _, err := InjectManifests(readInput(t), Manual, testValues())
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := InjectManifests(injected, Uninject, testValues())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "manifests.uninject.golden.yaml", out)
}
