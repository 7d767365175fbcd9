package command

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"

	sp "github.com/weftmesh/weft/api/serviceprofile/v1alpha1"
	"github.com/weftmesh/weft/destination/profiles"
	"github.com/weftmesh/weft/proxy/profile"
	"github.com/weftmesh/weft/viz/top"
)

// profileRoutes names requests' routes for `top --routes` from the
// ServiceProfile of their authority (books.demo.svc.cluster.local), read
// once per authority, translated and matched as destination and the proxy
// do.
type profileRoutes struct {
	ctx context.Context
	// get fetches a ServiceProfile; a nil profile means there is none.
	get  func(ctx context.Context, ns, name string) (*sp.ServiceProfile, error)
	warn io.Writer

	mu       sync.Mutex
	profiles map[string]*profile.Profile // by host; nil: none
	warned   bool
}

func newProfileRoutes(ctx context.Context, cs kubernetes.Interface, warn io.Writer) *profileRoutes {
	return &profileRoutes{ctx: ctx, warn: warn, profiles: map[string]*profile.Profile{},
		get: func(ctx context.Context, ns, name string) (*sp.ServiceProfile, error) {
			raw, err := cs.CoreV1().RESTClient().Get().
				AbsPath("/apis", sp.Group, sp.Version, "namespaces", ns, sp.Resource, name).DoRaw(ctx)
			if apierrors.IsNotFound(err) {
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			var p sp.ServiceProfile
			if err := json.Unmarshal(raw, &p); err != nil {
				return nil, fmt.Errorf("decode ServiceProfile %s/%s: %w", ns, name, err)
			}
			return &p, nil
		}}
}

// Route implements top.Table's Route.
func (r *profileRoutes) Route(authority, method, path string) string {
	host := authority
	if h, _, err := net.SplitHostPort(authority); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	r.mu.Lock()
	p, seen := r.profiles[host]
	r.mu.Unlock()
	if !seen {
		p = r.load(host)
		r.mu.Lock()
		r.profiles[host] = p
		r.mu.Unlock()
	}
	if p == nil {
		return ""
	}
	if rt := p.Match(method, path); rt != nil {
		return rt.RouteName()
	}
	return ""
}

// load reads the profile of host NAME.NS.svc.DOMAIN; other hosts have none.
func (r *profileRoutes) load(host string) *profile.Profile {
	labels := strings.Split(host, ".")
	if len(labels) < 4 || labels[2] != "svc" {
		return nil
	}
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	p, err := r.compile(ctx, labels[1], host)
	if err == nil {
		return p
	}
	r.mu.Lock()
	if !r.warned {
		r.warned = true
		fmt.Fprintf(r.warn, "weft viz top --routes: ServiceProfile %s: %v (its requests show as %s)\n", host, err, top.DefaultRoute)
	}
	r.mu.Unlock()
	return nil
}

// compile fetches, translates and compiles one profile; (nil, nil) when
// there is none.
func (r *profileRoutes) compile(ctx context.Context, ns, host string) (*profile.Profile, error) {
	obj, err := r.get(ctx, ns, host)
	if err != nil || obj == nil {
		return nil, err
	}
	dp, err := profiles.Translate(host, &obj.Spec)
	if err != nil {
		return nil, err
	}
	return profile.Compile(dp, profile.Options{})
}
