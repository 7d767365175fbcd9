package httproute

import "fmt"

// Backend is the chosen backend of a request (the backend_name label is
// Name).
type Backend struct {
	Name      string
	Namespace string
	Port      int
	Authority string
}

type weighted struct {
	backends []BackendSpec
	cum      []uint32
	total    uint32
}

func compileBackends(bs []BackendSpec) (weighted, error) {
	var w weighted
	for _, b := range bs {
		if b.Weight < 0 {
			return w, fmt.Errorf("backend %s weight %d is negative", b.Name, b.Weight)
		}
		if b.Weight == 0 {
			continue
		}
		w.total += uint32(b.Weight)
		w.backends = append(w.backends, b)
		w.cum = append(w.cum, w.total)
	}
	return w, nil
}

// pick returns the backend for x in [0,total), or false when no backend has
// weight.
func (w *weighted) pick(rnd func(uint32) uint32) (BackendSpec, bool) {
	if w.total == 0 {
		return BackendSpec{}, false
	}
	x := rnd(w.total)
	lo, hi := 0, len(w.cum)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if x < w.cum[mid] {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return w.backends[lo], true
}

func (b BackendSpec) backend() Backend {
	return Backend{Name: b.Name, Namespace: b.Namespace, Port: b.Port, Authority: b.Authority}
}
