package identity

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Keys in the issuer Secret (kubernetes.io/tls layout) and the trust-anchor
// ConfigMap.
const (
	IssuerCertKey  = corev1.TLSCertKey       // "tls.crt"
	IssuerKeyKey   = corev1.TLSPrivateKeyKey // "tls.key"
	TrustBundleKey = "ca-bundle.crt"
)

// loader is what sources feed: Service.Load.
type loader interface {
	Load(issuerCertPEM, issuerKeyPEM, anchorsPEM []byte) error
}

// KubeSource watches the issuer Secret and the trust-anchor ConfigMap and
// loads them into the service whenever either changes.
type KubeSource struct {
	Client    kubernetes.Interface
	Namespace string
	Secret    string // issuer Secret name
	ConfigMap string // trust anchor ConfigMap name
	Logger    *slog.Logger
}

// Run watches until ctx is done. It returns an error only if the informers
// cannot start.
func (k *KubeSource) Run(ctx context.Context, l loader) error {
	log := k.Logger
	if log == nil {
		log = slog.Default()
	}
	secrets := k.factory(k.Secret).Core().V1().Secrets()
	cms := k.factory(k.ConfigMap).Core().V1().ConfigMaps()
	var last []byte
	reload := func() {
		sec, err := secrets.Lister().Secrets(k.Namespace).Get(k.Secret)
		if err != nil {
			log.Error("issuer secret not readable", "namespace", k.Namespace, "secret", k.Secret, "err", err)
			return
		}
		cm, err := cms.Lister().ConfigMaps(k.Namespace).Get(k.ConfigMap)
		if err != nil {
			log.Error("trust anchor configmap not readable", "namespace", k.Namespace, "configmap", k.ConfigMap, "err", err)
			return
		}
		cert, key, bundle := sec.Data[IssuerCertKey], sec.Data[IssuerKeyKey], []byte(cm.Data[TrustBundleKey])
		sum := bytes.Join([][]byte{cert, key, bundle}, []byte{0})
		if bytes.Equal(sum, last) {
			return
		}
		if err := l.Load(cert, key, bundle); err == nil {
			last = sum
		}
	}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { reload() },
		UpdateFunc: func(any, any) { reload() },
		DeleteFunc: func(any) { log.Warn("issuer secret or trust anchors deleted; keeping the loaded issuer") },
	}
	for _, inf := range []cache.SharedIndexInformer{secrets.Informer(), cms.Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("add event handler: %w", err)
		}
		go inf.Run(ctx.Done())
	}
	if !cache.WaitForCacheSync(ctx.Done(), secrets.Informer().HasSynced, cms.Informer().HasSynced) {
		return fmt.Errorf("sync issuer secret and trust anchors: %w", ctx.Err())
	}
	<-ctx.Done()
	return nil
}

// factory watches only the one named object of a kind, so the service needs no
// list permission on other Secrets.
func (k *KubeSource) factory(name string) informers.SharedInformerFactory {
	return informers.NewSharedInformerFactoryWithOptions(k.Client, 0,
		informers.WithNamespace(k.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}))
}

// FileSource polls three files (as mounted from a Secret and a ConfigMap, or
// written by hand on a VM) and loads them when their content changes.
type FileSource struct {
	IssuerCert, IssuerKey, TrustAnchors string
	// Interval between polls; 0 means 5 s.
	Interval time.Duration
	Logger   *slog.Logger
}

// Run loads once, failing if the files are unreadable or invalid, then polls
// until ctx is done.
func (f *FileSource) Run(ctx context.Context, l loader) error {
	interval := f.Interval
	if interval == 0 {
		interval = 5 * time.Second
	}
	last, err := f.load(l, nil)
	if err != nil {
		return err
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if next, err := f.load(l, last); err == nil {
				last = next
			}
		}
	}
}

func (f *FileSource) load(l loader, last []byte) ([]byte, error) {
	var parts [3][]byte
	for i, p := range []string{f.IssuerCert, f.IssuerKey, f.TrustAnchors} {
		b, err := os.ReadFile(p)
		if err != nil {
			return last, fmt.Errorf("read %s: %w", p, err)
		}
		parts[i] = b
	}
	sum := bytes.Join(parts[:], []byte{0})
	if bytes.Equal(sum, last) {
		return last, nil
	}
	if err := l.Load(parts[0], parts[1], parts[2]); err != nil {
		return last, err
	}
	return sum, nil
}
