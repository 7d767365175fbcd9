package manifests

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestGatewayAPICRDs(t *testing.T) {
	out, err := GatewayAPICRDs(nil)
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(strings.TrimPrefix(string(out), "---\n"), "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("got %d documents, want 2", len(docs))
	}
	for i, d := range docs {
		if len(d) > 250000 {
			t.Errorf("%s is %d bytes: too large for kubectl's client-side apply annotation", GatewayAPICRDNames[i], len(d))
		}
		var crd struct {
			Metadata struct {
				Name        string            `json:"name"`
				Annotations map[string]string `json:"annotations"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(d), &crd); err != nil {
			t.Fatal(err)
		}
		if crd.Metadata.Name != GatewayAPICRDNames[i] || crd.Metadata.Annotations[GatewayAPIBundleAnnotation] != GatewayAPIVersion {
			t.Errorf("document %d: %s bundle %q", i, crd.Metadata.Name, crd.Metadata.Annotations[GatewayAPIBundleAnnotation])
		}
	}
	if !strings.Contains(docs[0], "retry:") || !strings.Contains(docs[0], "backendRequest:") {
		t.Error("HTTPRoute CRD lacks the experimental retry or timeouts fields")
	}
	skipped, err := GatewayAPICRDs(map[string]bool{GatewayAPICRDNames[0]: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(skipped), "kind: HTTPRoute\n") || !strings.Contains(string(skipped), "kind: GRPCRoute") {
		t.Error("skip did not leave out exactly HTTPRoute")
	}
}

func TestNewerOrSameGatewayAPI(t *testing.T) {
	for v, want := range map[string]bool{"v1.6.3": true, "v1.7.0": true, "v2.0.0-rc1": true, "v1.6.2": false, "v1.2.0": false, "garbage": true} {
		if got := NewerOrSameGatewayAPI(v); got != want {
			t.Errorf("%s: got %v, want %v", v, got, want)
		}
	}
}
