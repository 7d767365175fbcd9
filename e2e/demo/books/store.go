// Package books is the demo's HTTP/JSON books service: a small in-memory catalogue plus the
// /fail and /slow endpoints that give a mesh failures and latency to show.
package books

import (
	"fmt"
	"sort"
	"strconv"
	"sync"
)

// Book is one catalogue entry as served in JSON.
type Book struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	AuthorID string `json:"authorId"`
	Year     int    `json:"year,omitempty"`
}

// Store is a concurrency-safe in-memory catalogue. The zero value is not usable; use NewStore.
type Store struct {
	mu     sync.Mutex
	books  map[string]Book
	nextID int
}

// NewStore returns a store seeded with the demo's books (author ids match the authors service).
func NewStore() *Store {
	s := &Store{books: map[string]Book{}, nextID: 1}
	for _, b := range []Book{
		{Title: "A Wizard of Earthsea", AuthorID: "1", Year: 1968},
		{Title: "The Left Hand of Darkness", AuthorID: "1", Year: 1969},
		{Title: "Kindred", AuthorID: "2", Year: 1979},
		{Title: "Parable of the Sower", AuthorID: "2", Year: 1993},
		{Title: "Solaris", AuthorID: "3", Year: 1961},
	} {
		s.Add(b)
	}
	return s
}

// Add stores b under a new id and returns it with the id set.
func (s *Store) Add(b Book) Book {
	s.mu.Lock()
	defer s.mu.Unlock()
	b.ID = strconv.Itoa(s.nextID)
	s.nextID++
	s.books[b.ID] = b
	return b
}

// Get returns the book with id, or false.
func (s *Store) Get(id string) (Book, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.books[id]
	return b, ok
}

// List returns every book ordered by numeric id.
func (s *Store) List() []Book {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Book, 0, len(s.books))
	for _, b := range s.books {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return idLess(out[i].ID, out[j].ID) })
	return out
}

func idLess(a, b string) bool {
	ai, aerr := strconv.Atoi(a)
	bi, berr := strconv.Atoi(b)
	if aerr != nil || berr != nil {
		return a < b
	}
	return ai < bi
}

// Validate reports what is wrong with a book submitted by a client.
func (b Book) Validate() error {
	switch {
	case b.Title == "":
		return fmt.Errorf("title is required")
	case len(b.Title) > 200:
		return fmt.Errorf("title is longer than 200 bytes")
	case b.AuthorID == "":
		return fmt.Errorf("authorId is required")
	}
	return nil
}
