package probe

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// UserAgent is sent by HTTP probes unless the probe sets its own, as kubelet does.
const UserAgent = "kube-probe/1.36"

// maxBody bounds how much of a probe response is read, as kubelet's 10 KiB.
const maxBody = 10 << 10

// transport is shared by all HTTP probes: no keep-alive (every probe is a new connection, as
// kubelet), no proxy from the environment, TLS without verification (kubelet skips it too).
var transport = &http.Transport{
	Proxy:              nil,
	DisableKeepAlives:  true,
	TLSClientConfig:    &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // probes do not verify, as kubelet
	DisableCompression: true,
	DialContext:        (&net.Dialer{}).DialContext,
}

// URL builds the request URL of an httpGet action.
func URL(a *corev1.HTTPGetAction, t Target) (*url.URL, error) {
	port, err := ResolvePort(a.Port, t.Ports)
	if err != nil {
		return nil, err
	}
	scheme := strings.ToLower(string(a.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	if scheme != "http" && scheme != "https" {
		return nil, fmt.Errorf("unsupported scheme %q", a.Scheme)
	}
	path := a.Path
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u, err := url.Parse(scheme + "://" + net.JoinHostPort(host(a.Host, t), strconv.Itoa(port)) + path)
	if err != nil {
		return nil, fmt.Errorf("probe url: %w", err)
	}
	return u, nil
}

// HTTPGet sends one GET; a status in [200,400) is success. Redirects are followed only to the same
// host; a redirect elsewhere counts as success, as kubelet does.
func HTTPGet(ctx context.Context, a *corev1.HTTPGetAction, t Target) (Result, string) {
	u, err := URL(a, t)
	if err != nil {
		return Failure, err.Error()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Failure, err.Error()
	}
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set("Accept", "*/*")
	for _, h := range a.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	client := &http.Client{
		Transport: transport,
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if r.URL.Hostname() != u.Hostname() {
				return http.ErrUseLastResponse
			}
			if len(via) >= 10 {
				return fmt.Errorf("stopped after 10 redirects")
			}
			return nil
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return Failure, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return Success, ""
	}
	return Failure, fmt.Sprintf("HTTP probe failed with statuscode: %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
}
