package kubelet

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "B": "two"}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	for in, want := range map[string]string{
		"plain":         "plain",
		"$(A)":          "1",
		"x$(A)y$(B)z":   "x1ytwoz",
		"$$(A)":         "$(A)",
		"$$$(A)":        "$1",
		"$(MISSING)":    "$(MISSING)",
		"$A":            "$A",
		"$(A":           "$(A",
		"a$":            "a$",
		"$()":           "$()",
		"$(A)$(A)$$":    "11$",
		"http://$(B)/x": "http://two/x",
	} {
		if got := expand(in, lookup); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResolveEnv(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", UID: "u-1",
			Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"note": "hi"}},
		Spec: corev1.PodSpec{NodeName: "weft-node", ServiceAccountName: "web-sa"},
	}
	cms := map[string]*corev1.ConfigMap{"cfg": {Data: map[string]string{"LEVEL": "debug", "bad=key": "x", "mode": "fast"}}}
	secrets := map[string]*corev1.Secret{"sec": {Data: map[string][]byte{"token": []byte("s3cret"), "USER": []byte("bob")}}}
	notFound := func(res, name string) error {
		return apierrors.NewNotFound(schema.GroupResource{Resource: res}, name)
	}
	base := envInput{
		pod:         pod,
		podIPs:      []netip.Addr{netip.MustParseAddr("198.18.0.5"), netip.MustParseAddr("fd00:198:18::5")},
		hostIP:      netip.MustParseAddr("198.18.0.1"),
		serviceEnv:  serviceEnv(netip.MustParseAddrPort("198.19.0.1:443"), []*corev1.Service{{ObjectMeta: metav1.ObjectMeta{Name: "books-api"}, Spec: corev1.ServiceSpec{ClusterIP: "198.19.0.20", Ports: []corev1.ServicePort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}}}}}, true),
		allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")},
		configMap: func(_ context.Context, _, name string) (*corev1.ConfigMap, error) {
			if cm, ok := cms[name]; ok {
				return cm, nil
			}
			return nil, notFound("configmaps", name)
		},
		secret: func(_ context.Context, _, name string) (*corev1.Secret, error) {
			if s, ok := secrets[name]; ok {
				return s, nil
			}
			return nil, notFound("secrets", name)
		},
	}
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	res := func(name, r, div string) corev1.EnvVar {
		sel := &corev1.ResourceFieldSelector{Resource: r}
		if div != "" {
			sel.Divisor = resource.MustParse(div)
		}
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: sel}}
	}
	tests := []struct {
		name    string
		c       corev1.Container
		want    []string // KEY=value that must be present
		absent  []string // keys that must be absent
		wantErr string
	}{
		{name: "fieldRefs", c: corev1.Container{Env: []corev1.EnvVar{
			field("NAME", "metadata.name"), field("NS", "metadata.namespace"), field("UID", "metadata.uid"),
			field("APP", "metadata.labels['app']"), field("NOTE", "metadata.annotations['note']"),
			field("NODE", "spec.nodeName"), field("SA", "spec.serviceAccountName"),
			field("HOST_IP", "status.hostIP"), field("POD_IP", "status.podIP"), field("POD_IPS", "status.podIPs"),
		}}, want: []string{"NAME=web-1", "NS=shop", "UID=u-1", "APP=web", "NOTE=hi", "NODE=weft-node", "SA=web-sa",
			"HOST_IP=198.18.0.1", "POD_IP=198.18.0.5", "POD_IPS=198.18.0.5,fd00:198:18::5", "HOSTNAME=web-1"}},
		{name: "resourceFieldRef", c: corev1.Container{
			Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
			},
			Env: []corev1.EnvVar{res("CPU", "limits.cpu", ""), res("CPU_M", "limits.cpu", "1m"), res("MEM", "limits.memory", ""),
				res("MEM_MI", "limits.memory", "1Mi"), res("REQ_CPU_M", "requests.cpu", "1m"), res("REQ_MEM", "requests.memory", "")},
		}, want: []string{"CPU=1", "CPU_M=500", "MEM=67108864", "MEM_MI=64", "REQ_CPU_M=250", "REQ_MEM=0"}},
		{name: "resourceFieldRef defaults to allocatable", c: corev1.Container{Env: []corev1.EnvVar{res("CPU", "limits.cpu", ""), res("MEM", "limits.memory", "1Gi")}},
			want: []string{"CPU=2", "MEM=4"}},
		{name: "secret and configMap keys", c: corev1.Container{Env: []corev1.EnvVar{
			{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "token"}}},
			{Name: "LEVEL", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "LEVEL"}}},
			{Name: "OPT", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "x", Optional: ptr.To(true)}}},
			{Name: "OPTKEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "missing", Optional: ptr.To(true)}}},
		}}, want: []string{"TOKEN=s3cret", "LEVEL=debug"}, absent: []string{"OPT", "OPTKEY"}},
		{name: "missing secret key", c: corev1.Container{Env: []corev1.EnvVar{
			{Name: "T", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "nokey"}}},
		}}, wantErr: "couldn't find key nokey in Secret shop/sec"},
		{name: "missing configMap", c: corev1.Container{EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}}}}},
			wantErr: `configmap "gone" not found`},
		{name: "envFrom with prefix, env overrides", c: corev1.Container{
			EnvFrom: []corev1.EnvFromSource{
				{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}},
				{Prefix: "S_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}}},
				{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "none"}, Optional: ptr.To(true)}},
			},
			Env: []corev1.EnvVar{{Name: "mode", Value: "slow"}},
		}, want: []string{"LEVEL=debug", "mode=slow", "S_token=s3cret", "S_USER=bob"}, absent: []string{"bad=key"}},
		{name: "$(VAR) expansion in order", c: corev1.Container{Env: []corev1.EnvVar{
			{Name: "LATER_REF", Value: "$(B)"},
			{Name: "A", Value: "a"},
			{Name: "B", Value: "$(A)-b"},
			{Name: "ESC", Value: "$$(A)"},
			{Name: "SVC", Value: "$(BOOKS_API_SERVICE_HOST):$(BOOKS_API_SERVICE_PORT_HTTP)"},
			field("IP", "status.podIP"),
			{Name: "URL", Value: "http://$(IP):80"},
		}}, want: []string{"LATER_REF=$(B)", "B=a-b", "ESC=$(A)", "SVC=198.19.0.20:8080", "URL=http://198.18.0.5:80"}},
		{name: "service variables", c: corev1.Container{},
			want: []string{"KUBERNETES_SERVICE_HOST=198.19.0.1", "KUBERNETES_SERVICE_PORT=443", "KUBERNETES_PORT=tcp://198.19.0.1:443",
				"BOOKS_API_SERVICE_HOST=198.19.0.20", "BOOKS_API_SERVICE_PORT=8080", "BOOKS_API_PORT_8080_TCP_ADDR=198.19.0.20"}},
		{name: "bad fieldRef", c: corev1.Container{Env: []corev1.EnvVar{field("X", "spec.nope")}}, wantErr: `unsupported fieldRef "spec.nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base
			c := tt.c
			c.Name = "app"
			in.container = &c
			env, _, err := resolveEnv(context.Background(), in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !isConfigError(err) {
					t.Fatalf("err = %v, want config error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !slices.Contains(env, w) {
					t.Errorf("missing %q in %v", w, env)
				}
			}
			for _, a := range tt.absent {
				for _, e := range env {
					if strings.HasPrefix(e, a+"=") {
						t.Errorf("%q should be absent, got %q", a, e)
					}
				}
			}
			seen := map[string]bool{}
			for _, e := range env {
				k, _, _ := strings.Cut(e, "=")
				if seen[k] {
					t.Errorf("duplicate %q", k)
				}
				seen[k] = true
			}
		})
	}
}

func TestCommandArgsExpansion(t *testing.T) {
	k := &Kubelet{cfg: Config{KubernetesService: netip.MustParseAddrPort("198.19.0.1:443")}}
	w := &podWorker{k: k, pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"},
		Spec: corev1.PodSpec{EnableServiceLinks: ptr.To(false)}}}
	c := &corev1.Container{Name: "c", Image: "i",
		Command: []string{"/bin/$(PROG)", "$$(PROG)"},
		Args:    []string{"--api=$(KUBERNETES_SERVICE_HOST)", "$(UNSET)"},
		Env:     []corev1.EnvVar{{Name: "PROG", Value: "srv"}}}
	spec, err := w.containerSpec(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/bin/srv", "$(PROG)"}; !slices.Equal(spec.Command, want) {
		t.Errorf("command = %q, want %q", spec.Command, want)
	}
	if want := []string{"--api=198.19.0.1", "$(UNSET)"}; !slices.Equal(spec.Args, want) {
		t.Errorf("args = %q, want %q", spec.Args, want)
	}
}

func TestEffectiveSecurityContext(t *testing.T) {
	pod := func(psc *corev1.PodSecurityContext) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Spec: corev1.PodSpec{SecurityContext: psc}}
	}
	tests := []struct {
		name     string
		psc      *corev1.PodSecurityContext
		csc      *corev1.SecurityContext
		wantUser *int64
		wantGrp  *int64
		wantCaps bool
		wantErr  string
	}{
		{name: "nothing"},
		{name: "pod only", psc: &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(1000)), RunAsGroup: ptr.To(int64(2000))}, wantUser: ptr.To(int64(1000)), wantGrp: ptr.To(int64(2000))},
		{name: "container wins", psc: &corev1.PodSecurityContext{RunAsUser: ptr.To(int64(1000)), RunAsGroup: ptr.To(int64(2000))},
			csc:      &corev1.SecurityContext{RunAsUser: ptr.To(int64(2102)), Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}}},
			wantUser: ptr.To(int64(2102)), wantGrp: ptr.To(int64(2000)), wantCaps: true},
		{name: "nonroot from pod refuses uid 0", psc: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}, csc: &corev1.SecurityContext{RunAsUser: ptr.To(int64(0))},
			wantUser: ptr.To(int64(0)), wantErr: "runAsUser breaks non-root policy"},
		{name: "nonroot without user refuses image root", csc: &corev1.SecurityContext{RunAsNonRoot: ptr.To(true)}, wantErr: "image will run as root"},
		{name: "nonroot with user ok", psc: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(65534))}, wantUser: ptr.To(int64(65534))},
		{name: "container nonroot false overrides pod", psc: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}, csc: &corev1.SecurityContext{RunAsNonRoot: ptr.To(false)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pod(tt.psc)
			c := &corev1.Container{Name: "c", SecurityContext: tt.csc}
			sc := effectiveSecurityContext(p, c)
			err := verifyRunAsNonRoot(p, c, sc)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tt.psc == nil && tt.csc == nil {
				if sc != nil {
					t.Errorf("sc = %+v, want nil", sc)
				}
				return
			}
			if !equalPtr(sc.RunAsUser, tt.wantUser) || !equalPtr(sc.RunAsGroup, tt.wantGrp) {
				t.Errorf("user/group = %v/%v, want %v/%v", deref(sc.RunAsUser), deref(sc.RunAsGroup), deref(tt.wantUser), deref(tt.wantGrp))
			}
			if (sc.Capabilities != nil) != tt.wantCaps {
				t.Errorf("capabilities = %+v", sc.Capabilities)
			}
			if tt.csc != nil && sc == tt.csc {
				t.Error("container security context was not copied")
			}
		})
	}
}

func equalPtr(a, b *int64) bool { return (a == nil && b == nil) || (a != nil && b != nil && *a == *b) }
func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestBackoffSequence(t *testing.T) {
	b := backoff{base: 10e9, max: 300e9}
	var got []int
	for range 9 {
		got = append(got, int(b.next(0)/1e9))
	}
	if want := []int{0, 10, 20, 40, 80, 160, 300, 300, 300}; !slices.Equal(got, want) {
		t.Errorf("back-off sequence = %v, want %v", got, want)
	}
	if d := b.next(601e9); d != 0 {
		t.Errorf("after a long healthy run the back-off restarts at 0, got %s", d)
	}
}
