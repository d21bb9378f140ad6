package ui

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(http.StripPrefix("", Handler("/ui/")))
	defer srv.Close()
	cases := []struct {
		method, path string
		code         int
		ctype, body  string
	}{
		{"GET", "/ui/", 200, "text/html", `<script src="app.js" defer></script>`},
		{"GET", "/ui/app.js", 200, "text/javascript", "flowstatuses"},
		{"GET", "/ui/app.css", 200, "text/css", ":focus-visible"},
		{"HEAD", "/ui/", 200, "text/html", ""},
		{"GET", "/ui/nope.js", 404, "", ""},
		{"POST", "/ui/", 405, "", ""},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.code)
			continue
		}
		if c.code != 200 {
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, c.ctype) {
			t.Errorf("%s: content type %q, want %s", c.path, ct, c.ctype)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("%s: CSP %q", c.path, csp)
		}
		if !strings.Contains(string(b), c.body) {
			t.Errorf("%s: body lacks %q", c.path, c.body)
		}
	}
}

// TestNoExternalReferences keeps the page to its own origin: no CDN, no
// web font, no absolute URL to load anything from (the CSP would block it
// anyway; this fails earlier and says where).
func TestNoExternalReferences(t *testing.T) {
	// The SVG namespace is an identifier, not a request.
	allowed := map[string]bool{"http://www.w3.org/2000/svg": true}
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}[^\s"'` + "`" + `)]*`)
	err := fs.WalkDir(assets, "assets", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range url.FindAllString(string(b), -1) {
			if !allowed[m] {
				t.Errorf("%s refers to %s", path, m)
			}
		}
		if strings.Contains(string(b), "@import") || strings.Contains(string(b), "@font-face") {
			t.Errorf("%s imports styles or fonts", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
