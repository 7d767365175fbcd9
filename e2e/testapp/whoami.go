package testapp

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// Whoami writes one line: uid=<n> gid=<n> groups=<n,...> capeff=<hex> capbnd=<hex>, the process's
// real ids and its effective and bounding capability sets from /proc/self/status.
func Whoami(w io.Writer) error {
	groups, err := os.Getgroups()
	if err != nil {
		return fmt.Errorf("getgroups: %w", err)
	}
	gs := make([]string, len(groups))
	for i, g := range groups {
		gs[i] = fmt.Sprint(g)
	}
	caps, err := procStatus("CapEff", "CapBnd")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "uid=%d gid=%d euid=%d groups=%s capeff=%s capbnd=%s\n",
		os.Getuid(), os.Getgid(), os.Geteuid(), strings.Join(gs, ","), caps["CapEff"], caps["CapBnd"])
	return err
}

func procStatus(keys ...string) (map[string]string, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return nil, fmt.Errorf("read process status: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		for _, want := range keys {
			if k == want {
				out[k] = strings.TrimSpace(v)
			}
		}
	}
	return out, sc.Err()
}
