package kubelet

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/weftmesh/weft/e2e/node/fieldpath"
)

// envInput is everything a container's environment is resolved from.
type envInput struct {
	pod       *corev1.Pod
	container *corev1.Container
	podIPs    []netip.Addr
	hostIP    netip.Addr
	// serviceEnv are the KUBERNETES_SERVICE_* and docker-links variables; nil means none.
	serviceEnv map[string]string
	// allocatable is used for resourceFieldRef limits the container does not set.
	allocatable corev1.ResourceList
	configMap   func(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	secret      func(ctx context.Context, namespace, name string) (*corev1.Secret, error)
}

// configError is a problem with the container's configuration (missing ConfigMap/Secret key,
// bad fieldRef); the kubelet reports it as CreateContainerConfigError.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

func configErrorf(format string, a ...any) error {
	return &configError{err: fmt.Errorf(format, a...)}
}

// orderedEnv is an environment that keeps first-definition order and lets later definitions
// replace values.
type orderedEnv struct {
	keys []string
	vals map[string]string
}

func (e *orderedEnv) set(k, v string) {
	if e.vals == nil {
		e.vals = map[string]string{}
	}
	if _, ok := e.vals[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.vals[k] = v
}

func (e *orderedEnv) list() []string {
	out := make([]string, 0, len(e.keys))
	for _, k := range e.keys {
		out = append(out, k+"="+e.vals[k])
	}
	return out
}

// resolveEnv computes the container's environment as kubelet does: envFrom first, then env in
// order (each value $(VAR)-expanded against what is defined so far and the service variables),
// then the service variables not already defined. HOSTNAME is the pod name. It returns the
// "KEY=value" list and the map used to expand command and args.
func resolveEnv(ctx context.Context, in envInput) ([]string, map[string]string, error) {
	c, pod := in.container, in.pod
	user := map[string]string{}
	var userEnv orderedEnv
	define := func(k, v string) {
		user[k] = v
		userEnv.set(k, v)
	}
	for _, ef := range c.EnvFrom {
		if err := resolveEnvFrom(ctx, in, ef, define); err != nil {
			return nil, nil, err
		}
	}
	lookup := func(name string) (string, bool) {
		if v, ok := user[name]; ok {
			return v, true
		}
		v, ok := in.serviceEnv[name]
		return v, ok
	}
	for _, ev := range c.Env {
		if ev.ValueFrom == nil {
			define(ev.Name, expand(ev.Value, lookup))
			continue
		}
		v, ok, err := resolveValueFrom(ctx, in, ev)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			define(ev.Name, v)
		}
	}
	var all orderedEnv
	all.set("HOSTNAME", pod.Name)
	svcKeys := make([]string, 0, len(in.serviceEnv))
	for k := range in.serviceEnv {
		svcKeys = append(svcKeys, k)
	}
	sort.Strings(svcKeys)
	for _, k := range svcKeys {
		if _, ok := user[k]; !ok {
			all.set(k, in.serviceEnv[k])
		}
	}
	for _, k := range userEnv.keys {
		all.set(k, userEnv.vals[k])
	}
	return all.list(), all.vals, nil
}

func resolveEnvFrom(ctx context.Context, in envInput, ef corev1.EnvFromSource, define func(k, v string)) error {
	ns := in.pod.Namespace
	switch {
	case ef.ConfigMapRef != nil:
		optional := ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional
		cm, err := in.configMap(ctx, ns, ef.ConfigMapRef.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && optional {
				return nil
			}
			return configErrorf("configmap %q not found: %w", ef.ConfigMapRef.Name, err)
		}
		for _, k := range sortedKeys(cm.Data) {
			if validEnvName(ef.Prefix + k) {
				define(ef.Prefix+k, cm.Data[k])
			}
		}
	case ef.SecretRef != nil:
		optional := ef.SecretRef.Optional != nil && *ef.SecretRef.Optional
		s, err := in.secret(ctx, ns, ef.SecretRef.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && optional {
				return nil
			}
			return configErrorf("secret %q not found: %w", ef.SecretRef.Name, err)
		}
		keys := make([]string, 0, len(s.Data))
		for k := range s.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if validEnvName(ef.Prefix + k) {
				define(ef.Prefix+k, string(s.Data[k]))
			}
		}
	}
	return nil
}

func resolveValueFrom(ctx context.Context, in envInput, ev corev1.EnvVar) (string, bool, error) {
	vf, ns := ev.ValueFrom, in.pod.Namespace
	switch {
	case vf.FieldRef != nil:
		v, err := podField(in, vf.FieldRef.FieldPath)
		if err != nil {
			return "", false, configErrorf("env %s: %w", ev.Name, err)
		}
		return v, true, nil
	case vf.ResourceFieldRef != nil:
		v, err := resourceField(in, vf.ResourceFieldRef)
		if err != nil {
			return "", false, configErrorf("env %s: %w", ev.Name, err)
		}
		return v, true, nil
	case vf.ConfigMapKeyRef != nil:
		ref := vf.ConfigMapKeyRef
		optional := ref.Optional != nil && *ref.Optional
		cm, err := in.configMap(ctx, ns, ref.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && optional {
				return "", false, nil
			}
			return "", false, configErrorf("configmap %q not found: %w", ref.Name, err)
		}
		v, ok := cm.Data[ref.Key]
		if !ok {
			if b, bok := cm.BinaryData[ref.Key]; bok {
				return string(b), true, nil
			}
			if optional {
				return "", false, nil
			}
			return "", false, configErrorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, ns, ref.Name)
		}
		return v, true, nil
	case vf.SecretKeyRef != nil:
		ref := vf.SecretKeyRef
		optional := ref.Optional != nil && *ref.Optional
		s, err := in.secret(ctx, ns, ref.Name)
		if err != nil {
			if apierrors.IsNotFound(err) && optional {
				return "", false, nil
			}
			return "", false, configErrorf("secret %q not found: %w", ref.Name, err)
		}
		v, ok := s.Data[ref.Key]
		if !ok {
			if sv, sok := s.StringData[ref.Key]; sok {
				return sv, true, nil
			}
			if optional {
				return "", false, nil
			}
			return "", false, configErrorf("couldn't find key %s in Secret %s/%s", ref.Key, ns, ref.Name)
		}
		return string(v), true, nil
	}
	return "", false, configErrorf("env %s: unsupported valueFrom", ev.Name)
}

// podField resolves a downward-API field path.
func podField(in envInput, path string) (string, error) {
	return fieldpath.Resolve(fieldpath.Pod{Pod: in.pod, PodIPs: in.podIPs, HostIP: in.hostIP}, path)
}

// resourceField resolves a resourceFieldRef as kubelet: values are divided by the divisor and
// rounded up; an unset limit falls back to the node's allocatable.
func resourceField(in envInput, ref *corev1.ResourceFieldSelector) (string, error) {
	c := in.container
	if ref.ContainerName != "" && ref.ContainerName != c.Name {
		c = findContainer(in.pod, ref.ContainerName)
		if c == nil {
			return "", fmt.Errorf("resourceFieldRef names unknown container %q", ref.ContainerName)
		}
	}
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("unsupported resource %q", ref.Resource)
	}
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok && kind == "limits" {
		q, ok = in.allocatable[corev1.ResourceName(name)]
	}
	if !ok {
		q = resource.Quantity{}
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	switch corev1.ResourceName(name) {
	case corev1.ResourceCPU:
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	case corev1.ResourceMemory, corev1.ResourceEphemeralStorage:
		return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
	}
	if strings.HasPrefix(name, "hugepages-") {
		return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
	}
	return "", fmt.Errorf("unsupported resource %q", ref.Resource)
}

func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	return nil
}

// validEnvName accepts what the apiserver accepts for envFrom keys: printable, no '='.
func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r == '=' || r < 32 || r == 127 {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// serviceEnv builds the KUBERNETES_SERVICE_* variables and, when links are enabled, the
// docker-links variables of the namespace's services, as kubelet.
func serviceEnv(kubernetesSvc netip.AddrPort, services []*corev1.Service, links bool) map[string]string {
	env := map[string]string{}
	if links {
		for _, s := range services {
			if s.Spec.ClusterIP == "" || s.Spec.ClusterIP == corev1.ClusterIPNone || s.Spec.Type == corev1.ServiceTypeExternalName {
				continue
			}
			addServiceLinks(env, s)
		}
	}
	if kubernetesSvc.IsValid() {
		host, port := kubernetesSvc.Addr().String(), strconv.Itoa(int(kubernetesSvc.Port()))
		env["KUBERNETES_SERVICE_HOST"] = host
		env["KUBERNETES_SERVICE_PORT"] = port
		env["KUBERNETES_SERVICE_PORT_HTTPS"] = port
		url := "tcp://" + netip.AddrPortFrom(kubernetesSvc.Addr(), kubernetesSvc.Port()).String()
		env["KUBERNETES_PORT"] = url
		env["KUBERNETES_PORT_"+port+"_TCP"] = url
		env["KUBERNETES_PORT_"+port+"_TCP_PROTO"] = "tcp"
		env["KUBERNETES_PORT_"+port+"_TCP_PORT"] = port
		env["KUBERNETES_PORT_"+port+"_TCP_ADDR"] = host
	}
	return env
}

func addServiceLinks(env map[string]string, s *corev1.Service) {
	name := strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
	ip, err := netip.ParseAddr(s.Spec.ClusterIP)
	if err != nil || len(s.Spec.Ports) == 0 {
		return
	}
	env[name+"_SERVICE_HOST"] = ip.String()
	env[name+"_SERVICE_PORT"] = strconv.Itoa(int(s.Spec.Ports[0].Port))
	for i, p := range s.Spec.Ports {
		port := strconv.Itoa(int(p.Port))
		proto := strings.ToLower(string(p.Protocol))
		if proto == "" {
			proto = "tcp"
		}
		if p.Name != "" {
			env[name+"_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_"))] = port
		}
		url := proto + "://" + netip.AddrPortFrom(ip, uint16(p.Port)).String()
		if i == 0 {
			env[name+"_PORT"] = url
		}
		prefix := name + "_PORT_" + port + "_" + strings.ToUpper(proto)
		env[prefix] = url
		env[prefix+"_PROTO"] = proto
		env[prefix+"_PORT"] = port
		env[prefix+"_ADDR"] = ip.String()
	}
}

// isConfigError reports whether err is a container configuration problem.
func isConfigError(err error) bool {
	var ce *configError
	return errors.As(err, &ce)
}
