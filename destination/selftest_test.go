package destination

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/internal/ctlserver"
)

func selfTest(t *testing.T, admin string) (bool, ctlserver.Report) {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/selftest")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep ctlserver.Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	return rep.OK, rep
}

// TestSelfTestResolvesThroughGRPC: /selftest answers a real Get and
// GetProfile, and fails once the Service has no endpoints left.
func TestSelfTestResolvesThroughGRPC(t *testing.T) {
	f := startServer(t)
	var okAll bool
	var rep ctlserver.Report
	for i := 0; i < 100; i++ { // until the watchers synced
		if okAll, rep = selfTest(t, f.admin); okAll {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	get, _ := rep.Find(SelfTestGet)
	prof, _ := rep.Find(SelfTestGetProfile)
	if !okAll || !get.OK || !strings.Contains(get.Detail, "1 endpoints") ||
		!prof.OK || !strings.Contains(prof.Detail, "profile books.demo.svc.cluster.local") {
		t.Fatalf("selftest = %v %+v, want both passing with 1 endpoint", okAll, rep)
	}
	slices, err := f.kube.DiscoveryV1().EndpointSlices("demo").List(context.Background(), metav1.ListOptions{})
	if err != nil || len(slices.Items) == 0 {
		t.Fatalf("list slices: %v %d", err, len(slices.Items))
	}
	for _, s := range slices.Items {
		if err := f.kube.DiscoveryV1().EndpointSlices("demo").Delete(context.Background(), s.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		if okAll, rep = selfTest(t, f.admin); !okAll {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	get, _ = rep.Find(SelfTestGet)
	if okAll || get.OK || !strings.Contains(get.Error, "answered no endpoints") {
		t.Fatalf("selftest after deleting the endpoints = %v %+v, want get failing with no endpoints", okAll, rep)
	}
}
