package fieldpath

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	p := Pod{
		Pod: &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "demo", UID: "u-1",
				Labels: map[string]string{"b": "2", "a": `x"y`}, Annotations: map[string]string{"k": "v"}},
			Spec: corev1.PodSpec{NodeName: "weft-node", ServiceAccountName: "web"},
		},
		PodIPs: []netip.Addr{netip.MustParseAddr("198.18.0.5"), netip.MustParseAddr("fd00:198:18::5")},
		HostIP: netip.MustParseAddr("198.18.0.1"),
	}
	tests := []struct{ path, want string }{
		{"metadata.name", "web"},
		{"metadata.namespace", "demo"},
		{"metadata.uid", "u-1"},
		{"metadata.labels['b']", "2"},
		{"metadata.labels['missing']", ""},
		{"metadata.labels", "a=\"x\\\"y\"\nb=\"2\""},
		{"metadata.annotations['k']", "v"},
		{"spec.nodeName", "weft-node"},
		{"spec.serviceAccountName", "web"},
		{"status.hostIP", "198.18.0.1"},
		{"status.podIP", "198.18.0.5"},
		{"status.podIPs", "198.18.0.5,fd00:198:18::5"},
	}
	for _, tt := range tests {
		got, err := Resolve(p, tt.path)
		if err != nil || got != tt.want {
			t.Errorf("%s = %q, %v; want %q", tt.path, got, err, tt.want)
		}
	}
	if _, err := Resolve(p, "spec.containers"); err == nil {
		t.Error("unsupported path must fail")
	}
	if got, _ := Resolve(Pod{Pod: p.Pod}, "status.podIP"); got != "" {
		t.Errorf("no IP yet: %q", got)
	}
}
