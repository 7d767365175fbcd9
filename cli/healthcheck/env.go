package healthcheck

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes"

	"github.com/weftmesh/weft/manifests"
)

// Admin fetches a path from a pod's port through the API server's pod proxy
// (viz/stat.APIServerProxy implements it), so no port-forward is needed and
// nothing leaves the cluster.
type Admin interface {
	Get(ctx context.Context, pod *corev1.Pod, port int, path string) (io.ReadCloser, error)
}

// Env is what checks read: the cluster client, the run's settings and a
// per-round cache that lists each kind once.
type Env struct {
	Client kubernetes.Interface
	Admin  Admin
	// ControlPlaneNS is the install's namespace (--weft-namespace).
	ControlPlaneNS string
	// Namespace is the data-plane scope of --proxy; "" with AllNamespaces.
	Namespace string
	// CLIVersion is this binary's version (internal/version).
	CLIVersion string
	// Now is the clock certificates are checked against.
	Now func() time.Time
	// Values are the settings `weft install` would render (for --pre).
	Values manifests.Values

	mu    sync.Mutex
	cache map[string]*entry
}

type entry struct {
	once sync.Once
	val  any
	err  error
}

// memo computes key's value once per round.
func (e *Env) memo(key string, f func() (any, error)) (any, error) {
	e.mu.Lock()
	if e.cache == nil {
		e.cache = map[string]*entry{}
	}
	en := e.cache[key]
	if en == nil {
		en = &entry{}
		e.cache[key] = en
	}
	e.mu.Unlock()
	en.once.Do(func() { en.val, en.err = f() })
	return en.val, en.err
}

// Refresh drops the cache so a retried check sees the cluster anew.
func (e *Env) Refresh() {
	e.mu.Lock()
	e.cache = nil
	e.mu.Unlock()
}

// ServerVersion asks the API server's version once.
func (e *Env) ServerVersion() (*version.Info, error) {
	v, err := e.memo("version", func() (any, error) {
		v, err := e.Client.Discovery().ServerVersion()
		if err != nil {
			return nil, fmt.Errorf("get the server version: %w", err)
		}
		return v, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*version.Info), nil
}

// Namespaces lists every namespace once.
func (e *Env) Namespaces(ctx context.Context) ([]corev1.Namespace, error) {
	v, err := e.memo("namespaces", func() (any, error) {
		l, err := e.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list namespaces: %w", err)
		}
		return l.Items, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]corev1.Namespace), nil
}

// Pods lists the pods of ns ("" for all namespaces) once.
func (e *Env) Pods(ctx context.Context, ns string) ([]corev1.Pod, error) {
	v, err := e.memo("pods/"+ns, func() (any, error) {
		l, err := e.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list pods%s: %w", inNS(ns), err)
		}
		return l.Items, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]corev1.Pod), nil
}

// Deployments lists the control plane's Deployments once.
func (e *Env) Deployments(ctx context.Context) ([]appsv1.Deployment, error) {
	v, err := e.memo("deployments", func() (any, error) {
		l, err := e.Client.AppsV1().Deployments(e.ControlPlaneNS).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list deployments%s: %w", inNS(e.ControlPlaneNS), err)
		}
		return l.Items, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]appsv1.Deployment), nil
}

// Config reads and parses weft-config once.
func (e *Env) Config(ctx context.Context) (*manifests.Values, error) {
	v, err := e.memo("config", func() (any, error) {
		cm, err := e.Client.CoreV1().ConfigMaps(e.ControlPlaneNS).Get(ctx, manifests.ConfigName, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get ConfigMap %s/%s: %w", e.ControlPlaneNS, manifests.ConfigName, err)
		}
		return manifests.ParseConfig(cm.Data)
	})
	if err != nil {
		return nil, err
	}
	return v.(*manifests.Values), nil
}

// Secret gets a control-plane Secret once.
func (e *Env) Secret(ctx context.Context, name string) (*corev1.Secret, error) {
	v, err := e.memo("secret/"+name, func() (any, error) {
		s, err := e.Client.CoreV1().Secrets(e.ControlPlaneNS).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get Secret %s/%s: %w", e.ControlPlaneNS, name, err)
		}
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*corev1.Secret), nil
}

// TrustAnchorsPEM reads the trust-roots ConfigMap once.
func (e *Env) TrustAnchorsPEM(ctx context.Context) ([]byte, error) {
	v, err := e.memo("trust-roots", func() (any, error) {
		cm, err := e.Client.CoreV1().ConfigMaps(e.ControlPlaneNS).Get(ctx, manifests.TrustRootsName, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get ConfigMap %s/%s: %w", e.ControlPlaneNS, manifests.TrustRootsName, err)
		}
		return []byte(cm.Data[manifests.TrustRootsKey]), nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// AdminGet reads path from port of pod through Admin, bounded to 10 s.
func (e *Env) AdminGet(ctx context.Context, pod *corev1.Pod, port int, path string) ([]byte, error) {
	if e.Admin == nil {
		return nil, fmt.Errorf("no admin access to %s/%s configured", pod.Namespace, pod.Name)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rc, err := e.Admin.Get(ctx, pod, port, path)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s of %s/%s: %w", path, pod.Namespace, pod.Name, err)
	}
	return b, nil
}

func inNS(ns string) string {
	if ns == "" {
		return " in all namespaces"
	}
	return " in namespace " + ns
}
