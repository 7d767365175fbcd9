package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func volumePod(name string) *corev1.Pod {
	return testPod(name, func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{
			{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "app-config"},
				Items:                []corev1.KeyToPath{{Key: "app.yaml", Path: "conf/app.yaml", Mode: ptr(int32(0o600))}},
			}}},
			{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "app-secret", DefaultMode: ptr(int32(0o440))}}},
			{Name: "missing", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "nope", Optional: ptr(true)}}},
			{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: ptr(resource.MustParse("1Mi"))}}},
			{Name: "podinfo", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
				{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
				{Path: "app", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}},
			}}}},
		}
	})
}

func TestVolumes(t *testing.T) {
	client := fake.NewClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app-config", Namespace: "default"}, Data: map[string]string{"app.yaml": "port: 8080\n", "other": "x"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app-secret", Namespace: "default"}, Data: map[string][]byte{"password": []byte("s3cr3t")}},
	)
	rt := newTestRuntime(t, client)
	pod := volumePod("vols")
	sb := createSandbox(t, rt, pod)
	mountRoot := fmt.Sprintf("/tmp/wrt-mnt-%d", os.Getpid())
	t.Cleanup(func() { os.RemoveAll(mountRoot) })
	c := ContainerSpec{Name: "app", Image: "weft/testapp", SecurityContext: &corev1.SecurityContext{RunAsUser: ptr(int64(2102))},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "cfg", MountPath: mountRoot + "/cfg"},
			{Name: "sec", MountPath: mountRoot + "/sec", ReadOnly: true},
			{Name: "missing", MountPath: mountRoot + "/missing"},
			{Name: "scratch", MountPath: mountRoot + "/scratch"},
			{Name: "scratch", MountPath: mountRoot + "/sub", SubPath: "a/b"},
			{Name: "mem", MountPath: mountRoot + "/mem"},
			{Name: "podinfo", MountPath: mountRoot + "/podinfo"},
		}}
	// Files have the contents and modes of the API objects.
	for _, tc := range []struct{ path, want string }{
		{"/cfg/conf/app.yaml", "port: 8080\n"},
		{"/sec/password", "s3cr3t"},
		{"/podinfo/name", "vols"},
		{"/podinfo/labels", `app="vols"`},
		{"/podinfo/app", "vols"},
	} {
		root := c
		root.SecurityContext = nil // the 0600/0440 files belong to root
		if got := execOK(t, sb, root, "weft-testapp", "cat", mountRoot+tc.path); got != tc.want {
			t.Errorf("%s = %q, want %q", tc.path, got, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(sb.Dir(), "volumes/cfg/other")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("configMap key outside items was written: %v", err)
	}
	st, err := os.Stat(filepath.Join(sb.Dir(), "volumes/cfg/conf/app.yaml"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("item mode: %v %v, want 0600", st.Mode(), err)
	}
	// emptyDir (disk, subPath and tmpfs) is writable by a non-root user.
	execOK(t, sb, c, "weft-testapp", "write", mountRoot+"/scratch/f", "disk")
	execOK(t, sb, c, "weft-testapp", "write", mountRoot+"/sub/f", "subpath")
	execOK(t, sb, c, "weft-testapp", "write", mountRoot+"/mem/f", "memory")
	if b, _ := os.ReadFile(filepath.Join(sb.Dir(), "volumes/scratch/f")); string(b) != "disk" {
		t.Errorf("emptyDir file on host = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(sb.Dir(), "volumes/scratch/a/b/f")); string(b) != "subpath" {
		t.Errorf("subPath file on host = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(sb.Dir(), "volumes/mem/f")); string(b) != "memory" {
		t.Errorf("tmpfs file on host = %q", b)
	}
	// The readOnly mount refuses writes, even from root.
	root := c
	root.SecurityContext = nil
	code, out, err := sb.Exec(context.Background(), root, []string{"weft-testapp", "write", mountRoot + "/sec/x", "y"})
	if err != nil || code == 0 || !strings.Contains(string(out), "read-only file system") {
		t.Errorf("write to readOnly mount: code %d err %v out %q", code, err, out)
	}
	// The mounts live only in the container's mount namespace.
	for _, p := range []string{"/cfg/conf/app.yaml", "/sec/password", "/scratch/f", "/podinfo/name", "/mem/f"} {
		if _, err := os.Stat(mountRoot + p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is visible on the host: %v", p, err)
		}
	}
	// A configMap update reaches the volume on refresh.
	cm, _ := client.CoreV1().ConfigMaps("default").Get(context.Background(), "app-config", metav1.GetOptions{})
	cm.Data["app.yaml"] = "port: 9090\n"
	if _, err := client.CoreV1().ConfigMaps("default").Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	sb.mu.Lock()
	err = sb.refreshVolume(context.Background(), sb.volumes["cfg"], time.Now())
	sb.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if got := execOK(t, sb, root, "weft-testapp", "cat", mountRoot+"/cfg/conf/app.yaml"); got != "port: 9090\n" {
		t.Errorf("after update: %q", got)
	}
}

func TestVolumeErrors(t *testing.T) {
	client := fake.NewClientset()
	rt := newTestRuntime(t, client)
	for _, tc := range []struct {
		name string
		vol  corev1.VolumeSource
		want string
	}{
		{"missing configmap", corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}}}, `configmap default/absent`},
		{"resourceFieldRef", corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{{Path: "cpu", ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}}}}, "resourceFieldRef is not supported"},
		{"pvc", corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "x"}}, "unsupported volume type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := testPod("bad", func(p *corev1.Pod) { p.Spec.Volumes = []corev1.Volume{{Name: "v", VolumeSource: tc.vol}} })
			_, err := rt.CreateSandbox(context.Background(), pod)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(netnsDir, rt.newSandbox(pod).netns)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("failed sandbox left its netns: %v", err)
			}
			if n := len(rt.ipam.state.Allocated); n != 0 {
				t.Fatalf("failed sandbox kept %d IPs", n)
			}
		})
	}
}

// tokenReactor answers TokenRequests with numbered tokens that expire after life.
type tokenReactor struct {
	mu   sync.Mutex
	n    int
	reqs []*authenticationv1.TokenRequest
	sa   []string
	life time.Duration
}

func (r *tokenReactor) react(a k8stesting.Action) (bool, kruntime.Object, error) {
	ca, ok := a.(k8stesting.CreateAction)
	if !ok || ca.GetSubresource() != "token" {
		return false, nil, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	tr := ca.GetObject().(*authenticationv1.TokenRequest).DeepCopy()
	r.reqs = append(r.reqs, tr)
	r.sa = append(r.sa, a.(k8stesting.CreateActionImpl).Name)
	tr.Status = authenticationv1.TokenRequestStatus{Token: fmt.Sprintf("token-%d", r.n), ExpirationTimestamp: metav1.NewTime(time.Now().Add(r.life))}
	return true, tr, nil
}

func TestProjectedServiceAccountToken(t *testing.T) {
	client := fake.NewClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt", Namespace: "default"}, Data: map[string]string{"ca.crt": "CA PEM"}})
	tr := &tokenReactor{life: 2 * time.Second} // refreshed at 80 %: after 1.6 s
	client.PrependReactor("create", "serviceaccounts", tr.react)
	rt := newTestRuntime(t, client)
	pod := testPod("tok", func(p *corev1.Pod) {
		p.Spec.ServiceAccountName = "app"
		p.Spec.Volumes = []corev1.Volume{
			// What the ServiceAccount admission plugin adds.
			{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				DefaultMode: ptr(int32(0o644)),
				Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr(int64(3607))}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
				}}}},
			{Name: "identity", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", Audience: "identity.weft.io", ExpirationSeconds: ptr(int64(600))}},
			}}}},
		}
	})
	sb := createSandbox(t, rt, pod)
	c := ContainerSpec{Name: "app", Image: "weft/testapp", SecurityContext: &corev1.SecurityContext{RunAsUser: ptr(int64(2102))},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
			{Name: "identity", MountPath: "/var/run/weft/identity", ReadOnly: true},
		}}
	for _, tc := range []struct{ path, want string }{
		{"/var/run/secrets/kubernetes.io/serviceaccount/ca.crt", "CA PEM"},
		{"/var/run/secrets/kubernetes.io/serviceaccount/namespace", "default"},
	} {
		if got := execOK(t, sb, c, "weft-testapp", "cat", tc.path); got != tc.want {
			t.Errorf("%s = %q, want %q", tc.path, got, tc.want)
		}
	}
	first := execOK(t, sb, c, "weft-testapp", "cat", "/var/run/secrets/kubernetes.io/serviceaccount/token")
	if !strings.HasPrefix(first, "token-") {
		t.Fatalf("token file = %q", first)
	}
	tr.mu.Lock()
	if len(tr.reqs) != 2 {
		t.Fatalf("%d token requests, want 2", len(tr.reqs))
	}
	auds := map[string]bool{}
	for i, req := range tr.reqs {
		ref := req.Spec.BoundObjectRef
		if ref == nil || ref.Kind != "Pod" || ref.Name != "tok" || ref.UID != pod.UID || tr.sa[i] != "app" {
			t.Errorf("token request %d: bound to %+v for SA %q, want pod tok of SA app", i, ref, tr.sa[i])
		}
		auds[strings.Join(req.Spec.Audiences, ",")] = true
	}
	tr.mu.Unlock()
	if !auds[""] || !auds["identity.weft.io"] {
		t.Errorf("audiences %v, want the default and identity.weft.io", auds)
	}
	// The refresher swaps in a new token before the old one expires, atomically: a reader
	// polling the file never sees anything but a complete token.
	var last string
	waitFor(t, "token refresh", func() bool {
		got := execOK(t, sb, c, "weft-testapp", "cat", "/var/run/secrets/kubernetes.io/serviceaccount/token")
		if !strings.HasPrefix(got, "token-") {
			t.Fatalf("partial token file %q", got)
		}
		last = got
		return got != first
	})
	hostFile := filepath.Join(sb.Dir(), "volumes/identity/token")
	b, err := os.ReadFile(hostFile)
	if err != nil || !strings.HasPrefix(string(b), "token-") {
		t.Fatalf("identity token on host: %q %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(sb.Dir(), "volumes/identity/token")); err != nil || l != "..data/token" {
		t.Errorf("token is not a ..data symlink: %q %v", l, err)
	}
	t.Logf("token refreshed: %s -> %s", first, last)
}
