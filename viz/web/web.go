// Package web is the viz dashboard's front end: a few static files built
// from src/ (TypeScript, bundled by esbuild into dist/; dist/ is committed so
// that `make build` needs no npm, and `make web` rebuilds it) and embedded
// into the viz controller, which serves them next to the JSON query API.
// The page reads that API with same-origin GETs and renders every value
// with DOM text nodes (never HTML from data): see docs/viz-dashboard.md.
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"strconv"
)

//go:embed dist/index.html dist/app.js dist/app.css dist/favicon.svg
var dist embed.FS

// Asset is one served file.
type Asset struct {
	File, ContentType string
}

// Assets maps each URL path the dashboard serves to its file and type;
// every other path is 404.
var Assets = map[string]Asset{
	"/":            {"dist/index.html", "text/html; charset=utf-8"},
	"/index.html":  {"dist/index.html", "text/html; charset=utf-8"},
	"/app.js":      {"dist/app.js", "text/javascript; charset=utf-8"},
	"/app.css":     {"dist/app.css", "text/css; charset=utf-8"},
	"/favicon.svg": {"dist/favicon.svg", "image/svg+xml"},
}

// Handler serves the dashboard's files: GET and HEAD only (405 with Allow
// otherwise), exact paths only (404 otherwise). Security headers are the
// caller's (the query API's handler sets them on every answer).
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed: the dashboard is read-only", http.StatusMethodNotAllowed)
			return
		}
		a, ok := Assets[r.URL.Path]
		if !ok {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		b, err := fs.ReadFile(dist, a.File)
		if err != nil {
			http.Error(w, "read "+a.File+": "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", a.ContentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(b)
	})
}
