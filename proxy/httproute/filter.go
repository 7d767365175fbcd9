package httproute

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Apply applies the modifier to h: Set, then Add, then Remove.
func (hm *HeaderModifier) Apply(h Headers) {
	if hm == nil {
		return
	}
	for _, s := range hm.Set {
		h.Set(s.Name, s.Value)
	}
	for _, a := range hm.Add {
		h.Add(a.Name, a.Value)
	}
	for _, n := range hm.Remove {
		h.Del(n)
	}
}

// replacePrefix implements ReplacePrefixMatch: prefix (trailing slash
// ignored) is the matched PathPrefix and is replaced by repl, element-wise.
func replacePrefix(path, prefix, repl string) string {
	p := strings.TrimRight(prefix, "/")
	rest := path[len(p):]
	if rest == "" || rest == "/" && repl != "" && strings.HasSuffix(repl, "/") {
		if repl == "" {
			return "/"
		}
		return repl
	}
	out := strings.TrimRight(repl, "/") + rest
	if out == "" {
		return "/"
	}
	return out
}

// newPath applies a path modifier; prefix is the matched PathPrefix.
func (pm *PathModifier) newPath(path, prefix string) string {
	switch {
	case pm == nil:
		return path
	case pm.FullPath != nil:
		return *pm.FullPath
	case pm.PrefixMatch != nil:
		return replacePrefix(path, prefix, *pm.PrefixMatch)
	}
	return path
}

// Redirect is a response the proxy writes itself.
type Redirect struct {
	Status   int
	Location string
}

func (rs *RedirectSpec) build(r *Request, prefix string) *Redirect {
	scheme := r.Scheme
	if rs.Scheme != "" {
		scheme = rs.Scheme
	}
	if scheme == "" {
		scheme = "http"
	}
	host := r.Host
	if rs.Hostname != "" {
		host = rs.Hostname
	}
	port := r.Port
	if rs.Port != 0 {
		port = rs.Port
	} else if rs.Scheme != "" {
		port = 0 // a scheme change implies that scheme's well-known port
	}
	if port == 80 && scheme == "http" || port == 443 && scheme == "https" {
		port = 0
	}
	if port != 0 {
		host += ":" + strconv.Itoa(port)
	}
	loc := scheme + "://" + host + rs.Path.newPath(r.Path, prefix)
	if r.RawQuery != "" {
		loc += "?" + r.RawQuery
	}
	status := rs.StatusCode
	if status == 0 {
		status = 302
	}
	return &Redirect{Status: status, Location: loc}
}

// Abort is a fault's answer: an HTTP status, or a gRPC code when GRPC is set
// (sent as HTTP 200 with grpc-status).
type Abort struct {
	HTTPStatus int
	GRPCCode   int
	GRPC       bool
}

type fault struct {
	spec FaultSpec
}

func compileFault(f *FaultSpec) (*fault, error) {
	if f.AbortPercent < 0 || f.AbortPercent > 100 || f.DelayPercent < 0 || f.DelayPercent > 100 {
		return nil, fmt.Errorf("fault percent must be within 0..100 (abort %d, delay %d)", f.AbortPercent, f.DelayPercent)
	}
	if f.AbortPercent > 0 && f.GRPCCode == nil && (f.HTTPStatus < 200 || f.HTTPStatus > 599) {
		return nil, fmt.Errorf("fault abort needs httpStatus within 200..599 or grpcCode, got %d", f.HTTPStatus)
	}
	if f.DelayPercent > 0 && f.FixedDelay <= 0 {
		return nil, fmt.Errorf("fault delay needs a positive fixedDelay")
	}
	return &fault{spec: *f}, nil
}

// roll decides the fault for one request; rnd returns [0,n).
func (f *fault) roll(rnd func(uint32) uint32) (*Abort, time.Duration) {
	var delay time.Duration
	if f.spec.DelayPercent > 0 && int(rnd(100)) < f.spec.DelayPercent {
		delay = f.spec.FixedDelay
	}
	if f.spec.AbortPercent > 0 && int(rnd(100)) < f.spec.AbortPercent {
		a := &Abort{HTTPStatus: f.spec.HTTPStatus}
		if f.spec.GRPCCode != nil {
			a.GRPC, a.GRPCCode, a.HTTPStatus = true, *f.spec.GRPCCode, 200
		}
		return a, delay
	}
	return nil, delay
}
