// Package web is the demo's HTTP/1.1 frontend: it composes its pages from the books service
// (HTTP/JSON) and the authors service (gRPC unary and server streaming).
package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/weftmesh/weft/e2e/demo/api/authorspb"
	"github.com/weftmesh/weft/e2e/demo/books"
)

// maxBody bounds the bodies the frontend reads from clients and from the books service.
const maxBody = 1 << 20

// Config configures the frontend.
type Config struct {
	// BooksURL is the books service's base URL, e.g. http://books.demo.svc.cluster.local:7000.
	BooksURL string
	// Authors is the authors gRPC client. Required.
	Authors authorspb.AuthorsClient
	// HTTPClient calls the books service; nil means a client with Timeout.
	HTTPClient *http.Client
	// Timeout bounds each page's backend calls; zero means 5s.
	Timeout time.Duration
	// StreamDelay is the per-message delay asked of ListAuthors by /stream; zero means none.
	StreamDelay time.Duration
}

// Handler serves the frontend.
type Handler struct {
	cfg   Config
	books *url.URL
	mux   *http.ServeMux
}

// NewHandler validates cfg and returns the frontend handler.
func NewHandler(cfg Config) (*Handler, error) {
	u, err := url.Parse(cfg.BooksURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("books url %q: want http://host:port", cfg.BooksURL)
	}
	if cfg.Authors == nil {
		return nil, errors.New("authors client is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: cfg.Timeout}
	}
	h := &Handler{cfg: cfg, books: u, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /{$}", h.index)
	h.mux.HandleFunc("GET /stream", h.stream)
	h.mux.HandleFunc("POST /books", h.createBook)
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Entry is one line of the index page: a book with its author's name.
type Entry struct {
	books.Book
	Author string `json:"author"`
}

// Page is the index page's JSON form.
type Page struct {
	Entries []Entry `json:"books"`
}

func (h *Handler) index(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	page, err := h.compose(ctx)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = indexHTML.Execute(w, page)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(page)
}

// compose fetches the book list and each distinct author once.
func (h *Handler) compose(ctx context.Context) (Page, error) {
	var list []books.Book
	if err := h.booksJSON(ctx, "/books", &list); err != nil {
		return Page{}, err
	}
	names := map[string]string{}
	page := Page{Entries: make([]Entry, 0, len(list))}
	for _, b := range list {
		name, ok := names[b.AuthorID]
		if !ok {
			a, err := h.cfg.Authors.GetAuthor(ctx, &authorspb.GetAuthorRequest{Id: b.AuthorID})
			if err != nil {
				return Page{}, fmt.Errorf("authors GetAuthor %q: %w", b.AuthorID, err)
			}
			name = a.GetName()
			names[b.AuthorID] = name
		}
		page.Entries = append(page.Entries, Entry{Book: b, Author: name})
	}
	return page, nil
}

func (h *Handler) booksJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.books.JoinPath(path).String(), nil)
	if err != nil {
		return fmt.Errorf("books request: %w", err)
	}
	resp, err := h.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("books GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("books GET %s: read body: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("books GET %s: status %d: %s", path, resp.StatusCode, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("books GET %s: decode: %w", path, err)
	}
	return nil
}

// stream relays ListAuthors as chunked text, one line per author, flushed as it arrives.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	s, err := h.cfg.Authors.ListAuthors(ctx, &authorspb.ListAuthorsRequest{DelayMs: uint32(h.cfg.StreamDelay.Milliseconds())})
	if err != nil {
		http.Error(w, fmt.Sprintf("authors ListAuthors: %v", err), http.StatusBadGateway)
		return
	}
	first, err := s.Recv()
	if err != nil && !errors.Is(err, io.EOF) {
		http.Error(w, fmt.Sprintf("authors ListAuthors: %v", err), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	rc := http.NewResponseController(w)
	for a := first; a != nil; {
		fmt.Fprintf(w, "%s\t%s\t%d\n", a.GetId(), a.GetName(), a.GetBorn())
		_ = rc.Flush()
		a, err = s.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				// Headers are out: the only way left to signal failure is to cut the stream.
				panic(http.ErrAbortHandler)
			}
			break
		}
	}
}

// createBook forwards the JSON body to the books service and relays its answer.
func (h *Handler) createBook(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.Timeout)
	defer cancel()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, fmt.Sprintf("read body: %v", err), http.StatusBadRequest)
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.books.JoinPath("/books").String(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.cfg.HTTPClient.Do(req)
	if err != nil {
		http.Error(w, fmt.Sprintf("books POST /books: %v", err), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, maxBody))
}

var indexHTML = template.Must(template.New("index").Parse(`<!doctype html>
<html><head><title>weft demo books</title></head>
<body><h1>Books</h1>
<table><tr><th>Title</th><th>Author</th><th>Year</th></tr>
{{range .Entries}}<tr><td>{{.Title}}</td><td>{{.Author}}</td><td>{{.Year}}</td></tr>
{{end}}</table></body></html>
`))
