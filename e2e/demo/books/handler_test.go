package books

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func newHandler(t *testing.T, cfg Config) *Handler {
	t.Helper()
	h, err := NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestNewHandlerRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{FailureRate: -0.1},
		{FailureRate: 1.5},
		{SlowDelay: -time.Second},
		{SlowDelay: MaxSlowDelay + time.Second},
	} {
		if _, err := NewHandler(cfg); err == nil {
			t.Errorf("NewHandler(%+v): want error", cfg)
		}
	}
}

func TestRoutes(t *testing.T) {
	h := newHandler(t, Config{})
	tests := []struct {
		method, path, body string
		want               int
		contains           string
	}{
		{"GET", "/books", "", 200, `"title":"Kindred"`},
		{"GET", "/books/3", "", 200, `"id":"3"`},
		{"GET", "/books/999", "", 404, "not found"},
		{"POST", "/books", `{"title":"Ubik","authorId":"4","year":1969}`, 201, `"id":"6"`},
		{"POST", "/books", `{"title":""}`, 400, "title is required"},
		{"POST", "/books", `{"title":"x","authorId":"1","bogus":1}`, 400, "unknown field"},
		{"POST", "/books", `not json`, 400, "decode book"},
		{"GET", "/books/6", "", 200, `"title":"Ubik"`},
		{"DELETE", "/books/1", "", 405, ""},
		{"GET", "/nope", "", 404, ""},
		{"GET", "/fail", "", 200, `"ok"`},
		{"GET", "/slow", "", 200, `"ok"`},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.contains) {
			t.Errorf("%s %s = %d %q; want %d containing %q", tt.method, tt.path, rec.Code, rec.Body.String(), tt.want, tt.contains)
		}
	}
}

func TestFailureRateIsExact(t *testing.T) {
	for _, rate := range []float64{0, 0.1, 0.5, 0.75, 1} {
		h := newHandler(t, Config{FailureRate: rate})
		const n = 200
		failed := 0
		for range n {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/fail", nil))
			if rec.Code == http.StatusInternalServerError {
				failed++
			}
		}
		if want := int(rate * n); failed != want {
			t.Errorf("rate %v: %d of %d failed, want %d", rate, failed, n, want)
		}
	}
}

func TestSlowHonoursCancellation(t *testing.T) {
	h := newHandler(t, Config{SlowDelay: MaxSlowDelay})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/slow", nil).WithContext(ctx))
	if rec.Body.Len() != 0 {
		t.Errorf("cancelled /slow wrote %q, want nothing", rec.Body.String())
	}
}

func TestListIsOrdered(t *testing.T) {
	s := NewStore()
	for range 10 {
		s.Add(Book{Title: "t", AuthorID: "1"})
	}
	rec := httptest.NewRecorder()
	newHandler(t, Config{Store: s}).ServeHTTP(rec, httptest.NewRequest("GET", "/books", nil))
	var got []Book
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 15 || got[0].ID != "1" || got[9].ID != "10" || got[14].ID != "15" {
		t.Errorf("list ids out of order: %+v", got)
	}
}
