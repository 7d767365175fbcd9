package books

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// MaxSlowDelay bounds Config.SlowDelay.
const MaxSlowDelay = 30 * time.Second

// maxBody bounds a POST /books body.
const maxBody = 64 << 10

// Config configures the books handler.
type Config struct {
	// FailureRate is the fraction (0..1) of GET /fail requests answered 500. Zero never fails.
	// Failures are spread evenly (error diffusion), so n requests fail exactly round-down(n*rate)
	// or one more: a stable rate for the mesh's success-rate figures.
	FailureRate float64
	// SlowDelay is how long GET /slow waits before answering; zero answers at once.
	SlowDelay time.Duration
	// Store holds the books; nil means NewStore().
	Store *Store
}

// Handler serves the books API.
type Handler struct {
	cfg   Config
	store *Store
	mux   *http.ServeMux

	failMu  sync.Mutex
	failAcc float64 // error-diffusion accumulator for /fail
}

// NewHandler validates cfg and returns the books API handler.
func NewHandler(cfg Config) (*Handler, error) {
	if cfg.FailureRate < 0 || cfg.FailureRate > 1 {
		return nil, fmt.Errorf("failure rate %v: want a fraction between 0 and 1", cfg.FailureRate)
	}
	if cfg.SlowDelay < 0 || cfg.SlowDelay > MaxSlowDelay {
		return nil, fmt.Errorf("slow delay %v: want between 0 and %v", cfg.SlowDelay, MaxSlowDelay)
	}
	h := &Handler{cfg: cfg, store: cfg.Store, mux: http.NewServeMux()}
	if h.store == nil {
		h.store = NewStore()
	}
	h.mux.HandleFunc("GET /books", h.list)
	h.mux.HandleFunc("GET /books/{id}", h.get)
	h.mux.HandleFunc("POST /books", h.create)
	h.mux.HandleFunc("GET /fail", h.fail)
	h.mux.HandleFunc("GET /slow", h.slow)
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) list(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.store.List())
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	b, ok := h.store.Get(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("book %q not found", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	var b Book
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("decode book: %w", err))
		return
	}
	if err := b.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("invalid book: %w", err))
		return
	}
	b = h.store.Add(b)
	w.Header().Set("Location", "/books/"+b.ID)
	writeJSON(w, http.StatusCreated, b)
}

// shouldFail decides one /fail request by error diffusion over FailureRate.
func (h *Handler) shouldFail() bool {
	h.failMu.Lock()
	defer h.failMu.Unlock()
	h.failAcc += h.cfg.FailureRate
	if h.failAcc >= 1-1e-9 {
		h.failAcc--
		return true
	}
	return false
}

func (h *Handler) fail(w http.ResponseWriter, _ *http.Request) {
	if h.shouldFail() {
		writeError(w, http.StatusInternalServerError, errors.New("injected failure"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (h *Handler) slow(w http.ResponseWriter, r *http.Request) {
	t := time.NewTimer(h.cfg.SlowDelay)
	defer t.Stop()
	select {
	case <-t.C:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "delay": h.cfg.SlowDelay.String()})
	case <-r.Context().Done():
		// The client went away (or the server is shutting down): nobody reads an answer.
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
