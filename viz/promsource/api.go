package promsource

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// CheckURL validates a Prometheus base URL (http or https, a host, no query
// or fragment) and returns it without a trailing slash.
func CheckURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("prometheus url %q: %w", raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("prometheus url %q: want http:// or https://, e.g. http://prometheus.monitoring.svc.cluster.local:9090", raw)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("prometheus url %q has no host: e.g. http://prometheus.monitoring.svc.cluster.local:9090", raw)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return "", fmt.Errorf("prometheus url %q: give the base URL only (no query, fragment or credentials)", raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("prometheus url %q: port %q is not 1-65535", raw, p)
		}
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// sample is one element of an instant vector.
type sample struct {
	Metric map[string]string
	Value  float64
}

// maxAnswer bounds one answer's body.
const maxAnswer = 64 << 20

// call POSTs form to the Prometheus API path and decodes the answer's
// data into data; what names the call in errors. An answer whose status
// is not "success" is Prometheus' error.
func (s *Source) call(ctx context.Context, path, what, q string, form url.Values, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("prometheus %s: %w", what, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.hc.Do(req)
	if err != nil {
		return fmt.Errorf("prometheus %s: %w", what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("prometheus %s: read: %w", what, err)
	}
	var r struct {
		Status    string          `json:"status"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("prometheus %s: %s: not a Prometheus API answer: %w", what, resp.Status, err)
	}
	if r.Status != "success" {
		return fmt.Errorf("prometheus %s %q: %s: %s", what, q, r.ErrorType, r.Error)
	}
	if err := json.Unmarshal(r.Data, data); err != nil {
		return fmt.Errorf("prometheus %s %q: data: %w", what, q, err)
	}
	return nil
}

// promTime is a time as the Prometheus API takes it (seconds, ms precision).
func promTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

// query evaluates an instant PromQL query at ts through /api/v1/query.
func (s *Source) query(ctx context.Context, q string, ts time.Time) ([]sample, error) {
	var r struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := s.call(ctx, "/api/v1/query", "query", q, url.Values{"query": {q}, "time": {promTime(ts)}}, &r); err != nil {
		return nil, err
	}
	if r.ResultType != "vector" {
		return nil, fmt.Errorf("prometheus query %q: result type %q, want vector", q, r.ResultType)
	}
	out := make([]sample, 0, len(r.Result))
	for _, e := range r.Result {
		str, _ := e.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("prometheus query %q: value %v: %w", q, e.Value[1], err)
		}
		out = append(out, sample{Metric: e.Metric, Value: v})
	}
	return out, nil
}
