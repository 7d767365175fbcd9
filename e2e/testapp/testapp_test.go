package testapp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestHTTPHandler(t *testing.T) {
	s := httptest.NewServer(NewHTTPHandler())
	defer s.Close()
	tests := []struct {
		path     string
		want     int
		contains string
	}{
		{"/", 200, `"hostname"`},
		{"/uid", 200, fmt.Sprint(os.Getuid())},
		{"/healthz", 200, "ok"},
		{"/status/503", 503, "503"},
		{"/status/abc", 400, "want 200..599"},
		{"/sleep?d=1ms", 200, "slept 1ms"},
		{"/sleep?d=2h", 400, "between 0"},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("GET", s.URL+tt.path, nil)
		req.Header.Set("X-Wdm-Test", "yes")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want || !strings.Contains(b.String(), tt.contains) {
			t.Errorf("GET %s = %d %q; want %d containing %q", tt.path, resp.StatusCode, b.String(), tt.want, tt.contains)
		}
		if tt.path == "/" && !strings.Contains(b.String(), `"X-Wdm-Test"`) {
			t.Errorf("echo lacks the request header: %s", b.String())
		}
	}
}

func TestGetRetriesUntilSuccess(t *testing.T) {
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "hello")
	}))
	defer s.Close()
	var out bytes.Buffer
	if err := Get(context.Background(), GetConfig{URL: s.URL, Attempts: 5, Interval: time.Millisecond}, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "hello" || n.Load() != 3 {
		t.Errorf("body %q after %d attempts, want hello after 3", out.String(), n.Load())
	}
	n.Store(-100)
	err := Get(context.Background(), GetConfig{URL: s.URL, Attempts: 2, Interval: time.Millisecond}, &out)
	if err == nil || !strings.Contains(err.Error(), "2 attempts failed") || !strings.Contains(err.Error(), "status 503") {
		t.Errorf("Get against failing server = %v, want 2 attempts failed with status 503", err)
	}
}

func TestTCPEcho(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeTCPEcho(ctx, addr) }()
	var out bytes.Buffer
	for i := 0; i < 200; i++ { // the server may not be listening yet
		out.Reset()
		if err = TCP(context.Background(), addr, "ping wdm", time.Second, &out); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil || out.String() != "ping wdm" {
		t.Errorf("TCP echo = %q, %v; want ping wdm", out.String(), err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeTCPEcho after cancel: %v", err)
	}
}

func TestWhoami(t *testing.T) {
	var out bytes.Buffer
	if err := Whoami(&out); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("uid=%d gid=%d ", os.Getuid(), os.Getgid()); !strings.HasPrefix(out.String(), want) || !strings.Contains(out.String(), "capeff=") {
		t.Errorf("whoami %q, want prefix %q and capeff", out.String(), want)
	}
}

func TestRecordLifecycle(t *testing.T) {
	file := filepath.Join(t.TempDir(), "events")
	var out bytes.Buffer
	if err := RecordLifecycle(context.Background(), LifecycleConfig{File: file, Name: "main", For: time.Millisecond}, &out); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := RecordLifecycle(ctx, LifecycleConfig{File: file, Name: "side"}, &out); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("line %q: want 3 fields", l)
		}
		got = append(got, f[0]+" "+f[1])
	}
	if want := "start main,stop main,start side,stop side"; strings.Join(got, ",") != want {
		t.Errorf("events %v, want %s", got, want)
	}
	if out.String() != string(raw) {
		t.Errorf("stdout %q differs from file %q", out.String(), raw)
	}
	if err := RecordLifecycle(ctx, LifecycleConfig{}, &out); err == nil {
		t.Error("RecordLifecycle without a name: want error")
	}
}

func TestRecordLifecycleReadyAfter(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- RecordLifecycle(ctx, LifecycleConfig{Name: "side", Listen: addr, ReadyAfter: 50 * time.Millisecond}, &out)
	}()
	var codes []int
	for i := 0; i < 500; i++ {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		resp.Body.Close()
		if len(codes) == 0 || codes[len(codes)-1] != resp.StatusCode {
			codes = append(codes, resp.StatusCode)
		}
		if resp.StatusCode == 200 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(codes) != "[503 200]" {
		t.Errorf("healthz codes over time %v, want [503 200]", codes)
	}
	var events []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		events = append(events, strings.Join(strings.Fields(l)[:2], " "))
	}
	if want := "start side,ready side,stop side"; strings.Join(events, ",") != want {
		t.Errorf("events %v, want %s", events, want)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestMutate(t *testing.T) {
	tests := []struct {
		name, pod, wantPatch string
	}{
		{"with labels", `{"metadata":{"labels":{"a":"b"}}}`,
			`[{"op":"add","path":"/metadata/labels/weft.io~1mutated-by","value":"testapp"}]`},
		{"without labels", `{"metadata":{}}`,
			`[{"op":"add","path":"/metadata/labels","value":{}},{"op":"add","path":"/metadata/labels/weft.io~1mutated-by","value":"testapp"}]`},
	}
	for _, tt := range tests {
		resp := Mutate(&admissionv1.AdmissionRequest{UID: "u1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Object: runtime.RawExtension{Raw: []byte(tt.pod)}})
		if !resp.Allowed || resp.UID != "u1" || string(resp.Patch) != tt.wantPatch {
			t.Errorf("%s: response %+v patch %s, want allowed with %s", tt.name, resp, resp.Patch, tt.wantPatch)
		}
	}
	resp := Mutate(&admissionv1.AdmissionRequest{Kind: metav1.GroupVersionKind{Kind: "Pod"}, Object: runtime.RawExtension{Raw: []byte(`{`)}})
	if resp.Allowed {
		t.Error("malformed pod: want denied")
	}
}

// TestWebhookOverTLS runs the real webhook server with a self-signed certificate.
func TestWebhookOverTLS(t *testing.T) {
	dir := t.TempDir()
	certPEM := writeSelfSigned(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = ServeWebhook(ctx, WebhookConfig{Addr: addr, CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key")})
	}()

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}, Timeout: 5 * time.Second}
	review, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &admissionv1.AdmissionRequest{UID: "abc", Kind: metav1.GroupVersionKind{Kind: "Pod"}, Object: runtime.RawExtension{Raw: []byte(`{"metadata":{"labels":{"x":"y"}}}`)}},
	})
	var resp *http.Response
	for i := 0; i < 200; i++ {
		resp, err = client.Post("https://"+addr+"/mutate", "application/json", bytes.NewReader(review))
		if err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if out.Response == nil || out.Response.UID != "abc" || !out.Response.Allowed || !strings.Contains(string(out.Response.Patch), "mutated-by") || out.Kind != "AdmissionReview" {
		t.Errorf("review response %+v, want allowed with the label patch", out)
	}
}

func writeSelfSigned(t *testing.T, dir string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPEM
}
