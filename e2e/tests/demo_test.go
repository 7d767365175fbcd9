//go:build e2e

package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/weftmesh/weft/e2e/demo/manifests"
	"github.com/weftmesh/weft/e2e/demo/traffic"
)

// TestDemoApp: the demo manifest, moved into the test's namespace, becomes Ready and its traffic
// generator sees every target answer (and /fail fail some of the time).
func TestDemoApp(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	applyDemo(t, ns)
	for _, d := range []string{"books", "authors", "web", "traffic"} {
		waitFor(t, podTimeout, "deployment "+d+" available", func(ctx context.Context) (bool, string, error) {
			dep, err := kube.AppsV1().Deployments(ns).Get(ctx, d, metav1.GetOptions{})
			if err != nil {
				return false, err.Error(), nil
			}
			want := int32(1)
			if dep.Spec.Replicas != nil {
				want = *dep.Spec.Replicas
			}
			return dep.Status.AvailableReplicas == want && dep.Status.UpdatedReplicas == want,
				fmt.Sprintf("%d/%d available", dep.Status.AvailableReplicas, want), nil
		})
	}
	pods, err := kube.CoreV1().Pods(ns).List(ctxFor(t, time.Minute), metav1.ListOptions{LabelSelector: "app=traffic"})
	if err != nil || len(pods.Items) == 0 || pods.Items[0].Status.PodIP == "" {
		t.Fatalf("traffic pod: %d pods, %v", len(pods.Items), err)
	}
	stats := fmt.Sprintf("http://%s:9000/stats", pods.Items[0].Status.PodIP)
	client := &http.Client{Timeout: 10 * time.Second}
	// "Available" does not mean every Service rule and endpoint has reached
	// every client yet (as on any cluster): warm up until each target has
	// answered once, then measure from a fresh window.
	waitFor(t, podTimeout, "every demo target to answer once", func(ctx context.Context) (bool, string, error) {
		rep, err := fetchStats(ctx, client, stats)
		if err != nil {
			return false, err.Error(), nil
		}
		for _, s := range rep.Targets {
			if s.Successes == 0 {
				return false, s.Name + " has no success yet (" + s.LastError + ")", nil
			}
		}
		return len(rep.Targets) == 7, "", nil
	})
	resp, err := client.Post(stats+"?reset=1", "", nil)
	if err != nil {
		t.Fatalf("reset stats: %v", err)
	}
	resp.Body.Close()

	var last []traffic.TargetStats
	waitFor(t, podTimeout, "every demo target to succeed at least 3 times", func(ctx context.Context) (bool, string, error) {
		rep, err := fetchStats(ctx, client, stats)
		if err != nil {
			return false, err.Error(), nil
		}
		last = rep.Targets
		var state []string
		done := len(rep.Targets) == 7
		for _, s := range rep.Targets {
			state = append(state, fmt.Sprintf("%s: %d/%d ok (%s)", s.Name, s.Successes, s.Requests, s.LastError))
			if s.Successes < 3 || (s.Name == "books GET /fail" && s.Failures == 0) {
				done = false
			}
		}
		return done, strings.Join(state, "; "), nil
	})
	var b strings.Builder
	traffic.WriteTable(&b, last)
	t.Logf("demo traffic:\n%s", b.String())
	for _, s := range last {
		if s.Name != "books GET /fail" && s.Failures > 0 {
			t.Errorf("%s: %d failures (last: %s), want none once the demo is Ready", s.Name, s.Failures, s.LastError)
		}
	}
}

func fetchStats(ctx context.Context, c *http.Client, url string) (traffic.Report, error) {
	var rep traffic.Report
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return rep, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return rep, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return rep, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return rep, json.NewDecoder(resp.Body).Decode(&rep)
}

// applyDemo creates the demo manifest's objects in ns instead of "demo" (the Namespace object is
// skipped, and the in-cluster names in env values follow the namespace).
func applyDemo(t *testing.T, ns string) {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifests.Demo)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("read demo manifest: %v", err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		doc = bytes.ReplaceAll(doc, []byte(".demo.svc."), []byte("."+ns+".svc."))
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("decode demo manifest: %v", err)
		}
		switch o := obj.(type) {
		case *corev1.Namespace:
			continue
		case *corev1.ServiceAccount:
			o.Namespace = ns
			_, err = kube.CoreV1().ServiceAccounts(ns).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Service:
			o.Namespace = ns
			_, err = kube.CoreV1().Services(ns).Create(ctx, o, metav1.CreateOptions{})
		case *appsv1.Deployment:
			o.Namespace = ns
			_, err = kube.AppsV1().Deployments(ns).Create(ctx, o, metav1.CreateOptions{})
		default:
			t.Fatalf("demo manifest: unexpected %T", obj)
		}
		if err != nil {
			t.Fatalf("create demo object: %v", err)
		}
	}
}
