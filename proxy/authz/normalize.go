package authz

import (
	"errors"
	"strings"
)

// ErrMalformedPath is returned for paths no normalisation can make safe:
// invalid percent-escapes, NUL or control bytes.
var ErrMalformedPath = errors.New("malformed request path")

// NormalizePath returns the path a route is matched against, so that the
// spellings applications treat alike match alike (the class of bypasses
// published against other meshes' path policies):
//
//   - the query and fragment are dropped;
//   - percent-escapes are decoded once, including %2F and %5C;
//   - backslashes become slashes;
//   - repeated slashes are merged;
//   - "." and ".." segments are resolved (never above the root);
//   - the result always starts with "/".
//
// Invalid escapes and control bytes (before or after decoding) are an error:
// the caller refuses such a request rather than guess.
func NormalizePath(p string) (string, error) {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	decoded, err := percentDecode(p)
	if err != nil {
		return "", err
	}
	var segs []string
	for seg := range strings.SplitSeq(strings.ReplaceAll(decoded, "\\", "/"), "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
		default:
			segs = append(segs, seg)
		}
	}
	out := "/" + strings.Join(segs, "/")
	if len(segs) > 0 && (strings.HasSuffix(decoded, "/") || strings.HasSuffix(decoded, "\\") ||
		strings.HasSuffix(decoded, "/.") || strings.HasSuffix(decoded, "/..")) {
		out += "/"
	}
	return out, nil
}

func percentDecode(s string) (string, error) {
	if !strings.ContainsAny(s, "%") {
		return s, checkBytes(s)
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", ErrMalformedPath
		}
		b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
		i += 2
	}
	return string(b), checkBytes(string(b))
}

func checkBytes(s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return ErrMalformedPath
		}
	}
	return nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// NormalizeHost lowercases host and drops a port and a trailing dot:
// "Books.Demo.svc.cluster.local.:8080" becomes
// "books.demo.svc.cluster.local". IPv6 literals lose their brackets.
func NormalizeHost(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			h = h[1:i]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.Count(h, ":") == 1 {
		h = h[:i]
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// MatchHostname reports whether a normalised host matches a route hostname
// ("*.example.com" matches one or more labels before example.com).
func MatchHostname(pattern, host string) bool {
	pattern = NormalizeHost(pattern)
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(host, "."+rest) && len(host) > len(rest)+1
	}
	return pattern == host
}
