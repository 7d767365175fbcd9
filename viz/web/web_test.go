package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHandler(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method, path string
		status       int
		ctype, allow string
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", ""},
		{"GET", "/index.html", 200, "text/html; charset=utf-8", ""},
		{"GET", "/app.js", 200, "text/javascript; charset=utf-8", ""},
		{"GET", "/app.css", 200, "text/css; charset=utf-8", ""},
		{"GET", "/favicon.svg", 200, "image/svg+xml", ""},
		{"HEAD", "/", 200, "text/html; charset=utf-8", ""},
		{"GET", "/dist/app.js", 404, "text/plain; charset=utf-8", ""},
		{"GET", "/src/main.ts", 404, "text/plain; charset=utf-8", ""},
		{"GET", "/web.go", 404, "text/plain; charset=utf-8", ""},
		{"POST", "/", 405, "text/plain; charset=utf-8", "GET, HEAD"},
		{"PUT", "/app.js", 405, "text/plain; charset=utf-8", "GET, HEAD"},
		{"DELETE", "/nope", 405, "text/plain; charset=utf-8", "GET, HEAD"},
		{"OPTIONS", "/", 405, "text/plain; charset=utf-8", "GET, HEAD"},
	} {
		rec := httptest.NewRecorder()
		Handler().ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.status || rec.Header().Get("Content-Type") != tc.ctype || rec.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d %q Allow %q, want %d %q Allow %q", tc.method, tc.path, rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Allow"), tc.status, tc.ctype, tc.allow)
		}
		if tc.method == "HEAD" && rec.Body.Len() != 0 {
			t.Errorf("HEAD %s has a body", tc.path)
		}
		if tc.status == http.StatusOK && tc.method == "GET" && rec.Body.Len() == 0 {
			t.Errorf("GET %s is empty", tc.path)
		}
	}
}
