package chromium

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// page writes its text from a script after a timer, so that the dump shows
// the script ran within the virtual time budget (and the window width;
// its height includes the headless browser's chrome).
const page = `<!doctype html><title>t</title><script src="s.js"></script><body><p id="p">before</p></body>`
const script = `setTimeout(function(){document.getElementById("p").textContent="after "+innerWidth+" wide"},1000)`

func TestDumpDOMAndScreenshot(t *testing.T) {
	if _, err := Find(); errors.Is(err, ErrNotInstalled) {
		t.Skip(err)
	}
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/s.js" {
			w.Header().Set("Content-Type", "text/javascript")
			fmt.Fprint(w, script)
			return
		}
		fmt.Fprint(w, page)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{}, `<p id="p">after 1400 wide</p>`},
		{Options{Budget: 2 * time.Second, Width: 800, Height: 600}, `<p id="p">after 800 wide</p>`},
		{Options{Budget: 100 * time.Millisecond}, `<p id="p">before</p>`},
	} {
		dom, err := DumpDOM(t.Context(), srv.URL+"/", tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(dom, tc.want) {
			t.Errorf("%+v: DOM lacks %s:\n%s", tc.opts, tc.want, dom)
		}
	}
	png := filepath.Join(t.TempDir(), "shot.png")
	if err := Screenshot(t.Context(), srv.URL+"/", png, Options{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(png)
	if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("screenshot is no PNG (%d bytes, %v)", len(b), err)
	}
}

func TestFindWithoutChromium(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := Find(); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("Find() = %v, want ErrNotInstalled", err)
	}
	if _, err := DumpDOM(t.Context(), "http://127.0.0.1:1/", Options{}); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("DumpDOM without chromium: %v", err)
	}
}
