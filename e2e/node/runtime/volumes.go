package runtime

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftmesh/weft/e2e/node/fieldpath"
)

// volume is one pod volume materialised on the host.
type volume struct {
	name    string
	path    string // host path bound into containers (a directory, or a file for hostPath files)
	tmpfs   bool   // path is a tmpfs mount owned by the sandbox
	payload bool   // configMap/secret/downwardAPI/projected: content rewritten by refresh
	src     corev1.VolumeSource
}

// token is a cached ServiceAccount token of a projected volume.
type token struct {
	value     string
	refreshAt time.Time
}

const defaultFileMode = 0o644

// setupVolumes creates every volume of the pod under <podDir>/volumes.
func (s *Sandbox) setupVolumes(ctx context.Context) error {
	for _, v := range s.pod.Spec.Volumes {
		vol := &volume{name: v.Name, path: filepath.Join(s.dir, "volumes", v.Name), src: v.VolumeSource}
		s.volumes[v.Name] = vol
		switch {
		case v.EmptyDir != nil:
			if err := s.setupEmptyDir(vol, v.EmptyDir); err != nil {
				return err
			}
		case v.HostPath != nil:
			if err := setupHostPath(vol, v.HostPath); err != nil {
				return err
			}
		case v.ConfigMap != nil, v.Secret != nil, v.DownwardAPI != nil, v.Projected != nil:
			vol.payload = true
			if err := s.refreshVolume(ctx, vol, time.Now()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("volume %q: unsupported volume type (supported: emptyDir, hostPath, configMap, secret, downwardAPI, projected)", v.Name)
		}
	}
	return nil
}

func (s *Sandbox) fsGroup() int {
	if sc := s.pod.Spec.SecurityContext; sc != nil && sc.FSGroup != nil {
		return int(*sc.FSGroup)
	}
	return -1
}

func (s *Sandbox) setupEmptyDir(vol *volume, ed *corev1.EmptyDirVolumeSource) error {
	if err := os.MkdirAll(vol.path, 0o777); err != nil {
		return fmt.Errorf("volume %q: create emptyDir: %w", vol.name, err)
	}
	if ed.Medium == corev1.StorageMediumMemory {
		opts := "mode=0777"
		if ed.SizeLimit != nil && !ed.SizeLimit.IsZero() {
			opts += ",size=" + strconv.FormatInt(ed.SizeLimit.Value(), 10)
		}
		if err := unix.Mount("tmpfs", vol.path, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
			return fmt.Errorf("volume %q: mount tmpfs: %w", vol.name, err)
		}
		vol.tmpfs = true
	} else if ed.Medium != corev1.StorageMediumDefault {
		return fmt.Errorf("volume %q: emptyDir medium %q is not supported (use \"\" or Memory)", vol.name, ed.Medium)
	}
	mode := os.FileMode(0o777)
	if g := s.fsGroup(); g >= 0 {
		if err := os.Chown(vol.path, -1, g); err != nil {
			return fmt.Errorf("volume %q: chown to fsGroup %d: %w", vol.name, g, err)
		}
		mode |= os.ModeSetgid
	}
	if err := os.Chmod(vol.path, mode); err != nil {
		return fmt.Errorf("volume %q: chmod: %w", vol.name, err)
	}
	return nil
}

func setupHostPath(vol *volume, hp *corev1.HostPathVolumeSource) error {
	vol.path = hp.Path
	if !filepath.IsAbs(hp.Path) {
		return fmt.Errorf("volume %q: hostPath %q must be absolute", vol.name, hp.Path)
	}
	t := corev1.HostPathUnset
	if hp.Type != nil {
		t = *hp.Type
	}
	switch t {
	case corev1.HostPathDirectoryOrCreate:
		if err := os.MkdirAll(hp.Path, 0o755); err != nil {
			return fmt.Errorf("volume %q: create %s: %w", vol.name, hp.Path, err)
		}
	case corev1.HostPathFileOrCreate:
		if err := os.MkdirAll(filepath.Dir(hp.Path), 0o755); err != nil {
			return fmt.Errorf("volume %q: create %s: %w", vol.name, hp.Path, err)
		}
		f, err := os.OpenFile(hp.Path, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("volume %q: create %s: %w", vol.name, hp.Path, err)
		}
		f.Close()
	case corev1.HostPathUnset:
	default:
		st, err := os.Stat(hp.Path)
		if err != nil {
			return fmt.Errorf("volume %q: hostPath %s: %w", vol.name, hp.Path, err)
		}
		if (t == corev1.HostPathDirectory) != st.IsDir() && (t == corev1.HostPathDirectory || t == corev1.HostPathFile) {
			return fmt.Errorf("volume %q: hostPath %s is not of type %s", vol.name, hp.Path, t)
		}
	}
	return nil
}

// refreshVolume recomputes the content of a payload volume and swaps it in atomically.
// ServiceAccount tokens are requested again only when due (80 % of their lifetime).
func (s *Sandbox) refreshVolume(ctx context.Context, vol *volume, now time.Time) error {
	payload := map[string]payloadFile{}
	var err error
	src := vol.src
	switch {
	case src.ConfigMap != nil:
		err = s.addConfigMap(ctx, payload, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional, modeOr(src.ConfigMap.DefaultMode))
	case src.Secret != nil:
		err = s.addSecret(ctx, payload, src.Secret.SecretName, src.Secret.Items, src.Secret.Optional, modeOr(src.Secret.DefaultMode))
	case src.DownwardAPI != nil:
		err = s.addDownwardAPI(payload, src.DownwardAPI.Items, modeOr(src.DownwardAPI.DefaultMode))
	case src.Projected != nil:
		mode := modeOr(src.Projected.DefaultMode)
		for i, ps := range src.Projected.Sources {
			switch {
			case ps.ConfigMap != nil:
				err = s.addConfigMap(ctx, payload, ps.ConfigMap.Name, ps.ConfigMap.Items, ps.ConfigMap.Optional, mode)
			case ps.Secret != nil:
				err = s.addSecret(ctx, payload, ps.Secret.Name, ps.Secret.Items, ps.Secret.Optional, mode)
			case ps.DownwardAPI != nil:
				err = s.addDownwardAPI(payload, ps.DownwardAPI.Items, mode)
			case ps.ServiceAccountToken != nil:
				err = s.addToken(ctx, payload, vol.name+"/"+strconv.Itoa(i), ps.ServiceAccountToken, mode, now)
			default:
				err = errors.New("unsupported projected source (supported: configMap, secret, downwardAPI, serviceAccountToken)")
			}
			if err != nil {
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("volume %q: %w", vol.name, err)
	}
	if _, err := writePayload(vol.path, payload, s.fsGroup()); err != nil {
		return fmt.Errorf("volume %q: %w", vol.name, err)
	}
	return nil
}

func modeOr(m *int32) os.FileMode {
	if m == nil {
		return defaultFileMode
	}
	return os.FileMode(*m & 0o777)
}

func itemMode(m *int32, def os.FileMode) os.FileMode {
	if m == nil {
		return def
	}
	return os.FileMode(*m & 0o777)
}

// addKeys adds data keys (all of them, or only items) to the payload.
func addKeys(payload map[string]payloadFile, kind, name string, data map[string][]byte, items []corev1.KeyToPath, optional bool, mode os.FileMode) error {
	if len(items) == 0 {
		for k, v := range data {
			payload[k] = payloadFile{Data: v, Mode: mode}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return fmt.Errorf("%s %q has no key %q", kind, name, it.Key)
		}
		payload[it.Path] = payloadFile{Data: v, Mode: itemMode(it.Mode, mode)}
	}
	return nil
}

func (s *Sandbox) addConfigMap(ctx context.Context, payload map[string]payloadFile, name string, items []corev1.KeyToPath, optional *bool, mode os.FileMode) error {
	opt := optional != nil && *optional
	if s.rt.cfg.Client == nil {
		return errors.New("configMap volume needs a Kubernetes client (Config.Client is nil)")
	}
	cm, err := s.rt.cfg.Client.CoreV1().ConfigMaps(s.pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) && opt {
			return nil
		}
		return fmt.Errorf("get configmap %s/%s: %w", s.pod.Namespace, name, err)
	}
	data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	maps.Copy(data, cm.BinaryData)
	return addKeys(payload, "configmap", name, data, items, opt, mode)
}

func (s *Sandbox) addSecret(ctx context.Context, payload map[string]payloadFile, name string, items []corev1.KeyToPath, optional *bool, mode os.FileMode) error {
	opt := optional != nil && *optional
	if s.rt.cfg.Client == nil {
		return errors.New("secret volume needs a Kubernetes client (Config.Client is nil)")
	}
	sec, err := s.rt.cfg.Client.CoreV1().Secrets(s.pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) && opt {
			return nil
		}
		return fmt.Errorf("get secret %s/%s: %w", s.pod.Namespace, name, err)
	}
	data := maps.Clone(sec.Data)
	if data == nil {
		data = map[string][]byte{}
	}
	for k, v := range sec.StringData {
		data[k] = []byte(v)
	}
	return addKeys(payload, "secret", name, data, items, opt, mode)
}

func (s *Sandbox) addDownwardAPI(payload map[string]payloadFile, items []corev1.DownwardAPIVolumeFile, mode os.FileMode) error {
	for _, it := range items {
		if it.ResourceFieldRef != nil {
			return fmt.Errorf("downwardAPI %q: resourceFieldRef is not supported by the local runtime (no cgroup limits)", it.Path)
		}
		if it.FieldRef == nil {
			return fmt.Errorf("downwardAPI %q: fieldRef is required", it.Path)
		}
		v, err := s.fieldValue(it.FieldRef.FieldPath)
		if err != nil {
			return fmt.Errorf("downwardAPI %q: %w", it.Path, err)
		}
		payload[it.Path] = payloadFile{Data: []byte(v), Mode: itemMode(it.Mode, mode)}
	}
	return nil
}

// fieldValue resolves a downward API field path against the pod.
func (s *Sandbox) fieldValue(path string) (string, error) {
	return fieldpath.Resolve(fieldpath.Pod{Pod: s.pod, PodIPs: s.ips}, path)
}

func (s *Sandbox) addToken(ctx context.Context, payload map[string]payloadFile, key string, src *corev1.ServiceAccountTokenProjection, mode os.FileMode, now time.Time) error {
	t, ok := s.tokens[key]
	if !ok || !now.Before(t.refreshAt) {
		nt, err := s.requestToken(ctx, src, now)
		if err != nil {
			return err
		}
		s.tokens[key] = nt
		t = nt
	}
	payload[src.Path] = payloadFile{Data: []byte(t.value), Mode: mode}
	return nil
}

// requestToken asks the TokenRequest API for a token of the pod's ServiceAccount bound to the
// pod, due for refresh at 80 % of its lifetime.
func (s *Sandbox) requestToken(ctx context.Context, src *corev1.ServiceAccountTokenProjection, now time.Time) (token, error) {
	if s.rt.cfg.Client == nil {
		return token{}, errors.New("serviceAccountToken needs a Kubernetes client (Config.Client is nil)")
	}
	exp := int64(3600)
	if src.ExpirationSeconds != nil {
		exp = *src.ExpirationSeconds
	}
	var aud []string
	if src.Audience != "" {
		aud = []string{src.Audience}
	}
	sa := s.pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         aud,
		ExpirationSeconds: &exp,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: s.pod.Name, UID: s.pod.UID},
	}}
	out, err := s.rt.cfg.Client.CoreV1().ServiceAccounts(s.pod.Namespace).CreateToken(ctx, sa, tr, metav1.CreateOptions{})
	if err != nil {
		return token{}, fmt.Errorf("request token for serviceaccount %s/%s (audience %q): %w", s.pod.Namespace, sa, src.Audience, err)
	}
	expiry := out.Status.ExpirationTimestamp.Time
	if expiry.IsZero() {
		expiry = now.Add(time.Duration(exp) * time.Second)
	}
	life := expiry.Sub(now)
	refresh := now.Add(life * 8 / 10)
	if max := now.Add(24 * time.Hour); refresh.After(max) {
		refresh = max
	}
	if min := now.Add(time.Second); refresh.Before(min) {
		refresh = min
	}
	return token{value: out.Status.Token, refreshAt: refresh}, nil
}
