// Package kubeletapi serves the kubelet's HTTPS API for weft's node agent: /containerLogs,
// /exec, /attach and /portForward (what `kubectl logs`, `exec`, `attach` and `port-forward`
// reach through the apiserver), /healthz, /pods and /stats/summary. Streaming uses
// Kubernetes' own CRI streaming server packages (SPDY and WebSocket). Callers authenticate
// with a client certificate of the cluster CA or a bearer token (TokenReview) and are
// authorized with SubjectAccessReview on nodes/proxy, nodes/log, nodes/stats as kubelet does.
package kubeletapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/weftmesh/weft/e2e/node/kubelet"
)

// Port is the kubelet API's port.
const Port = 10250

// Node is what the API serves from: the node agent's pods and containers.
type Node interface {
	// Pods returns the pods bound to this node.
	Pods() []*corev1.Pod
	// Container looks up one container (errors wrap kubelet.ErrNotFound when there is none).
	Container(namespace, pod, container string) (kubelet.ContainerRef, error)
}

// Config configures the Server.
type Config struct {
	Node     Node                 // required
	Client   kubernetes.Interface // TokenReview and SubjectAccessReview; required
	NodeName string               // the Node checked in SubjectAccessReviews; required
	// Addr is the listen address, e.g. "198.18.0.1:10250". Required.
	Addr string
	// CertFile/KeyFile are the serving certificate; ClientCAFile verifies client certificates.
	CertFile, KeyFile, ClientCAFile string
	Logger                          *slog.Logger // nil means slog.Default()
}

// Server is the kubelet API server.
type Server struct {
	cfg Config
	log *slog.Logger
	rv  reviewer
	srv *http.Server
}

// New checks cfg, loads the certificates and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Node == nil || cfg.Client == nil || cfg.NodeName == "" || cfg.Addr == "" {
		return nil, errors.New("kubeletapi: Node, Client, NodeName and Addr are required")
	}
	cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("kubeletapi: load serving certificate: %w", err)
	}
	caPEM, err := os.ReadFile(cfg.ClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("kubeletapi: read client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("kubeletapi: %s holds no PEM certificate", cfg.ClientCAFile)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, log: log, rv: apiReviewer{client: cfg.Client}}
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.VerifyClientCertIfGiven,
			ClientCAs:    pool,
			MinVersion:   tls.VersionTLS12,
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("kubeletapi: listen %s: %w", s.cfg.Addr, err)
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(sctx)
		_ = s.srv.Close() // hijacked streams
	}()
	s.log.Info("kubelet API serving", "addr", s.cfg.Addr)
	if err := s.srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("kubeletapi: serve: %w", err)
	}
	return nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("GET /pods", s.pods)
	mux.HandleFunc("GET /pods/", s.pods)
	mux.HandleFunc("GET /stats/summary", s.statsSummary)
	mux.HandleFunc("GET /containerLogs/{ns}/{pod}/{container}", s.containerLogs)
	for _, p := range []string{"/exec/{ns}/{pod}/{container}", "/exec/{ns}/{pod}/{uid}/{container}"} {
		mux.HandleFunc(p, s.exec)
	}
	for _, p := range []string{"/attach/{ns}/{pod}/{container}", "/attach/{ns}/{pod}/{uid}/{container}"} {
		mux.HandleFunc(p, s.attach)
	}
	for _, p := range []string{"/portForward/{ns}/{pod}", "/portForward/{ns}/{pod}/{uid}"} {
		mux.HandleFunc(p, s.portForward)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := authorize(r, s.rv, s.cfg.NodeName); d.code != 0 {
			s.log.Info("kubelet API request refused", "path", r.URL.Path, "code", d.code, "reason", d.reason)
			http.Error(w, d.reason, d.code)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) pods(w http.ResponseWriter, _ *http.Request) {
	list := corev1.PodList{}
	list.Kind, list.APIVersion = "PodList", "v1"
	for _, p := range s.cfg.Node.Pods() {
		list.Items = append(list.Items, *p)
	}
	writeJSON(w, list)
}

func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) {
	o, err := parseLogOptions(r.URL.Query(), time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ref, ok := s.lookup(w, r)
	if !ok {
		return
	}
	src := logSource{path: ref.LogPath, running: ref.Running}
	if o.previous {
		src = logSource{path: ref.PreviousLogPath}
		o.follow = false
		if _, err := os.Stat(src.path); err != nil {
			http.Error(w, fmt.Sprintf("previous terminated container %q in pod %q not found", ref.Container, ref.Pod.Name), http.StatusBadRequest)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	if err := writeLog(r.Context(), w, src, o); err != nil {
		s.log.Warn("container log", "pod", ref.Pod.Namespace+"/"+ref.Pod.Name, "container", ref.Container, "err", err)
	}
}

// lookup resolves {ns}/{pod}/{container}, answering 404 itself when there is none.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) (kubelet.ContainerRef, bool) {
	ref, err := s.cfg.Node.Container(r.PathValue("ns"), r.PathValue("pod"), r.PathValue("container"))
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, kubelet.ErrNotFound) {
			code = http.StatusNotFound
		}
		http.Error(w, err.Error(), code)
		return ref, false
	}
	if uid := r.PathValue("uid"); uid != "" && string(ref.Pod.UID) != uid {
		http.Error(w, fmt.Sprintf("pod %s/%s has uid %s, not %s", ref.Pod.Namespace, ref.Pod.Name, ref.Pod.UID, uid), http.StatusNotFound)
		return ref, false
	}
	return ref, true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}
