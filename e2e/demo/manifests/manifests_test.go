package manifests

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
)

// TestDemoManifest decodes every document strictly and checks what the demo relies on: images
// that map to a demo binary, readiness probes, named Service ports matching container ports.
func TestDemoManifest(t *testing.T) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(Demo)))
	kinds := map[string]int{}
	ports := map[string]map[string]bool{} // app → container port names
	var services []*corev1.Service
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("decode %s: %v", doc, err)
		}
		kinds[gvk.Kind]++
		switch o := obj.(type) {
		case *appsv1.Deployment:
			if o.Namespace != "demo" {
				t.Errorf("deployment %s in namespace %q, want demo", o.Name, o.Namespace)
			}
			spec := o.Spec.Template.Spec
			if spec.ServiceAccountName != o.Name {
				t.Errorf("deployment %s runs as %q, want its own ServiceAccount", o.Name, spec.ServiceAccountName)
			}
			ports[o.Name] = map[string]bool{}
			for _, c := range spec.Containers {
				name, ok := strings.CutPrefix(strings.Split(c.Image, ":")[0], "weft/")
				if !ok {
					t.Errorf("%s: image %q is not a weft/ image", o.Name, c.Image)
				}
				if _, err := os.Stat(filepath.Join("..", "cmd", name, "main.go")); err != nil {
					t.Errorf("%s: image %q has no main at e2e/demo/cmd/%s: %v", o.Name, c.Image, name, err)
				}
				if c.ReadinessProbe == nil {
					t.Errorf("%s: container %s has no readiness probe", o.Name, c.Name)
				}
				for _, p := range c.Ports {
					ports[o.Name][p.Name] = true
				}
			}
		case *corev1.Service:
			services = append(services, o)
		}
	}
	for _, s := range services {
		for _, p := range s.Spec.Ports {
			if p.Name != "http" && p.Name != "grpc" {
				t.Errorf("service %s port %q: want named http or grpc", s.Name, p.Name)
			}
			if !ports[s.Spec.Selector["app"]][p.TargetPort.StrVal] {
				t.Errorf("service %s targets port %q that deployment %s does not declare", s.Name, p.TargetPort.StrVal, s.Spec.Selector["app"])
			}
		}
	}
	want := map[string]int{"Namespace": 1, "ServiceAccount": 4, "Deployment": 4, "Service": 3}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%d %s objects, want %d", kinds[k], k, n)
		}
	}
}
