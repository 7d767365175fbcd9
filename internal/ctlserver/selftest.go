package ctlserver

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// SelfTest exercises the component the way its clients do, from inside
// its own pod: `weft check` reads the results through the API server's pod
// proxy, so it needs no port-forward and nothing leaves the cluster.
type SelfTest struct {
	// Name is stable: checks look results up by it.
	Name string
	// Run gets the loopback address of the component's API listener. It
	// returns a detail for the checker (a certificate, say) or an error.
	Run func(ctx context.Context, addr string) (detail string, err error)
}

// SelfTestTimeout bounds one /selftest request.
const SelfTestTimeout = 10 * time.Second

// Report is the JSON body of GET /selftest. It is answered with 200 either
// way (the API server's pod proxy turns other codes into opaque errors); OK
// says whether every test passed.
type Report struct {
	Component string   `json:"component"`
	OK        bool     `json:"ok"`
	Results   []Result `json:"results"`
}

// Result is one self-test's outcome.
type Result struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Find returns the result named name.
func (r Report) Find(name string) (Result, bool) {
	for _, x := range r.Results {
		if x.Name == name {
			return x, true
		}
	}
	return Result{}, false
}

type selfTestHandler struct {
	name   string
	tests  []SelfTest
	target string
}

func (h selfTestHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), SelfTestTimeout)
	defer cancel()
	rep := Report{Component: h.name, OK: true, Results: make([]Result, 0, len(h.tests))}
	for _, t := range h.tests {
		detail, err := t.Run(ctx, h.target)
		res := Result{Name: t.Name, OK: err == nil, Detail: detail}
		if err != nil {
			res.Error = err.Error()
			rep.OK = false
		}
		rep.Results = append(rep.Results, res)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(rep)
}
