package manifests

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/weftmesh/weft/destination/profiles"
)

// TestBooksProfile translates the demo's ServiceProfile exactly as the destination service does
// and checks the routes `weft viz routes svc/books` shows.
func TestBooksProfile(t *testing.T) {
	var obj map[string]any
	if err := yaml.Unmarshal(BooksProfile, &obj); err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: obj}
	if u.GetNamespace() != "demo" || u.GetName() != "books.demo.svc.cluster.local" {
		t.Fatalf("profile %s/%s, want demo/books.demo.svc.cluster.local", u.GetNamespace(), u.GetName())
	}
	p, err := profiles.FromUnstructured(u)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range p.Routes {
		names = append(names, r.Name)
	}
	want := "GET /books,GET /books/{id},POST /books,GET /fail,GET /slow"
	if got := strings.Join(names, ","); got != want {
		t.Errorf("routes %s, want %s", got, want)
	}
}
