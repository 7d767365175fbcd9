package profiles

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"sigs.k8s.io/yaml"

	sp "github.com/weftmesh/weft/api/serviceprofile/v1alpha1"
)

func decode(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: obj}
}

const header = `
apiVersion: weft.io/v1alpha1
kind: ServiceProfile
metadata: {name: books.demo.svc.cluster.local, namespace: demo}
`

func TestFromUnstructured(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		spec     string
		contains []string // in the prototext of the result
		errs     []string // in the error
	}{
		{
			name: "linkerd example",
			spec: `
spec:
  routes:
  - name: GET /books/{id}
    condition: {method: get, pathRegex: '/books/\d+'}
    responseClasses:
    - condition: {status: {min: 500, max: 599}}
      isFailure: true
    isRetryable: true
    timeout: 300ms
  retryBudget: {retryRatio: 0.3, minRetriesPerSecond: 5, ttl: 20s}
  dstOverrides:
  - {authority: books-v2.demo.svc.cluster.local:7000, weight: 500m}`,
			contains: []string{`name:"GET /books/{id}"`, `method:"GET"`, `path_regex:"/books/\\d+"`, `min:500`, `max:599`, `is_failure:true`, `is_retryable:true`, `nanos:300000000`, `retry_ratio:0.3`, `seconds:20`, `weight:500`},
		},
		{
			name: "combinators and linkerd list-form not",
			spec: `
spec:
  routes:
  - name: r
    condition:
      any:
      - all: [{method: POST}, {pathRegex: /a}]
      - not: [{method: DELETE}]`,
			contains: []string{"any:", "all:", `not:{any:{matches:{method:"DELETE"}}}`},
		},
		{
			name:     "default budget",
			spec:     "\nspec:\n  routes: [{name: r, condition: {pathRegex: /}}]",
			contains: []string{"retry_ratio:0.2", "min_retries_per_second:10", "seconds:10"},
		},
		{
			name: "every error reported with its path",
			spec: `
spec:
  routes:
  - name: bad
    condition: {pathRegex: '/(unclosed'}
    timeout: soon
    responseClasses: [{condition: {status: {min: 700}}}]
  - name: ""
    condition: {}
  retryBudget: {retryRatio: 0.2, minRetriesPerSecond: 1, ttl: never}
  opaquePorts: ["3306", "x"]`,
			errs: []string{"routes[0].condition.pathRegex", "routes[0].timeout", "routes[0].responseClasses[0].condition.status", "routes[1].name: required", "routes[1].condition: empty condition", "retryBudget.ttl", `opaquePorts[1]: "x"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := FromUnstructured(decode(t, header+tt.spec))
			if len(tt.errs) > 0 {
				if err == nil {
					t.Fatal("expected errors")
				}
				for _, e := range tt.errs {
					if !strings.Contains(err.Error(), e) {
						t.Errorf("error lacks %q:\n%v", e, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			text := strings.ReplaceAll(prototext.Format(p), " ", "")
			text = strings.ReplaceAll(text, "\n", "")
			for _, c := range tt.contains {
				if !strings.Contains(text, strings.ReplaceAll(c, " ", "")) {
					t.Errorf("profile lacks %s:\n%s", c, prototext.Format(p))
				}
			}
		})
	}
}

func TestWatcherFollowsCreateEditDelete(t *testing.T) {
	t.Parallel()
	scheme := runtime.NewScheme()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{sp.GroupVersionResource: "ServiceProfileList"})
	w := New(dyn, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	key := Key{"demo", "books.demo.svc.cluster.local"}
	sub := w.Subscribe(key)
	defer sub.Close()
	if sub.Current() != nil {
		t.Fatal("no profile yet")
	}
	res := dyn.Resource(sp.GroupVersionResource).Namespace("demo")
	obj := decode(t, header+"\nspec:\n  routes: [{name: r1, condition: {pathRegex: /}}]")
	if _, err := res.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sub, func() bool { p := sub.Current(); return p != nil && p.Routes[0].Name == "r1" })

	// An invalid edit keeps the previous version.
	bad := decode(t, header+"\nspec:\n  routes: [{name: r2, condition: {pathRegex: '('}}]")
	var invalid atomic.Int32
	w.mu.Lock()
	w.OnInvalid = func(Key, error) { invalid.Add(1) }
	w.mu.Unlock()
	if _, err := res.Update(ctx, bad, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); invalid.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("invalid edit not reported")
		}
	}
	if p := sub.Current(); p == nil || p.Routes[0].Name != "r1" {
		t.Fatal("an invalid edit must keep the previous valid profile")
	}
	good := decode(t, header+"\nspec:\n  routes: [{name: r3, condition: {pathRegex: /}}]")
	if _, err := res.Update(ctx, good, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sub, func() bool { p := sub.Current(); return p != nil && p.Routes[0].Name == "r3" })
	if err := res.Delete(ctx, key.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sub, func() bool { return sub.Current() == nil })
}

func waitFor(t *testing.T, sub *Subscription, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-sub.C:
		case <-deadline:
			t.Fatal("condition not reached within 10s")
		}
	}
}
