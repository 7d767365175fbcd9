package web

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weftmesh/weft/e2e/demo/api/authorspb"
	"github.com/weftmesh/weft/e2e/demo/authors"
	"github.com/weftmesh/weft/e2e/demo/books"
)

// backends starts a real books HTTP server and authors gRPC server on loopback.
func backends(t *testing.T, booksCfg books.Config) (string, authorspb.AuthorsClient) {
	t.Helper()
	bh, err := books.NewHandler(booksCfg)
	if err != nil {
		t.Fatal(err)
	}
	bs := httptest.NewServer(bh)
	t.Cleanup(bs.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	authors.Register(g, authors.NewServer())
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return bs.URL, authorspb.NewAuthorsClient(cc)
}

func frontend(t *testing.T, booksURL string, ac authorspb.AuthorsClient) *httptest.Server {
	t.Helper()
	h, err := NewHandler(Config{BooksURL: booksURL, Authors: ac})
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func TestNewHandlerValidates(t *testing.T) {
	_, ac := backends(t, books.Config{})
	for _, cfg := range []Config{
		{BooksURL: "", Authors: ac},
		{BooksURL: "books:7000", Authors: ac},
		{BooksURL: "http://books:7000"},
	} {
		if _, err := NewHandler(cfg); err == nil {
			t.Errorf("NewHandler(%+v): want error", cfg)
		}
	}
}

func TestIndexComposesBooksAndAuthors(t *testing.T) {
	booksURL, ac := backends(t, books.Config{})
	s := frontend(t, booksURL, ac)
	resp, err := http.Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page Page
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || len(page.Entries) != 5 {
		t.Fatalf("GET / = %d with %d entries, want 200 with 5", resp.StatusCode, len(page.Entries))
	}
	if e := page.Entries[2]; e.Title != "Kindred" || e.Author != "Octavia E. Butler" {
		t.Errorf("entry 2 = %+v, want Kindred by Octavia E. Butler", e)
	}

	req, _ := http.NewRequest("GET", s.URL+"/", nil)
	req.Header.Set("Accept", "text/html")
	hresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer hresp.Body.Close()
	var sb strings.Builder
	sc := bufio.NewScanner(hresp.Body)
	for sc.Scan() {
		sb.WriteString(sc.Text())
	}
	if !strings.Contains(sb.String(), "<td>Solaris</td><td>Stanisław Lem</td>") {
		t.Errorf("HTML page lacks Solaris row: %s", sb.String())
	}
}

func TestIndexReportsBackendFailure(t *testing.T) {
	_, ac := backends(t, books.Config{})
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	s := frontend(t, dead.URL, ac)
	resp, err := http.Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("GET / with books down = %d, want 502", resp.StatusCode)
	}
}

func TestStreamRelaysEveryAuthor(t *testing.T) {
	booksURL, ac := backends(t, books.Config{})
	s := frontend(t, booksURL, ac)
	resp, err := http.Get(s.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("transfer encoding %v, want chunked", resp.TransferEncoding)
	}
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "1\tUrsula K. Le Guin") {
		t.Errorf("stream lines %q, want 4 authors starting with Le Guin", lines)
	}
}

func TestCreateBookForwards(t *testing.T) {
	booksURL, ac := backends(t, books.Config{})
	s := frontend(t, booksURL, ac)
	for _, tt := range []struct {
		body string
		want int
	}{
		{`{"title":"Ubik","authorId":"4"}`, http.StatusCreated},
		{`{"title":""}`, http.StatusBadRequest},
	} {
		resp, err := http.Post(s.URL+"/books", "application/json", strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("POST /books %s = %d, want %d", tt.body, resp.StatusCode, tt.want)
		}
	}
	resp, err := http.Get(booksURL + "/books/6")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b books.Book
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || b.Title != "Ubik" {
		t.Errorf("books has %+v (%v), want the created Ubik", b, err)
	}
}
