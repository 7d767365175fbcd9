package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// payloadFile is one file of a configMap, secret, downwardAPI or projected volume.
type payloadFile struct {
	Data []byte
	Mode os.FileMode
}

// writePayload updates dir to hold exactly payload (relative path -> file) the way kubelet's
// AtomicWriter does: the files live in a fresh "..<timestamp>" directory, "..data" is a
// symlink to it that is swapped with a rename, and each top-level name is a symlink into
// "..data". Readers therefore see either the old or the new set of files, never a mix or a
// partial file. gid >= 0 chowns the files to that group (fsGroup). It reports whether anything
// changed.
func writePayload(dir string, payload map[string]payloadFile, gid int) (bool, error) {
	for p := range payload {
		if err := validPayloadPath(p); err != nil {
			return false, err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("create volume dir %s: %w", dir, err)
	}
	dataLink := filepath.Join(dir, "..data")
	oldTS, _ := os.Readlink(dataLink)
	if oldTS != "" && payloadUnchanged(filepath.Join(dir, oldTS), payload) {
		return false, nil
	}
	tsDir, err := os.MkdirTemp(dir, "..ts-")
	if err != nil {
		return false, fmt.Errorf("create payload dir in %s: %w", dir, err)
	}
	if err := os.Chmod(tsDir, 0o755); err != nil {
		return false, fmt.Errorf("chmod %s: %w", tsDir, err)
	}
	for p, f := range payload {
		full := filepath.Join(tsDir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return false, fmt.Errorf("create %s: %w", filepath.Dir(full), err)
		}
		if err := os.WriteFile(full, f.Data, f.Mode); err != nil {
			return false, fmt.Errorf("write %s: %w", full, err)
		}
		if err := os.Chmod(full, f.Mode); err != nil {
			return false, fmt.Errorf("chmod %s: %w", full, err)
		}
		if gid >= 0 {
			if err := os.Lchown(full, -1, gid); err != nil {
				return false, fmt.Errorf("chown %s: %w", full, err)
			}
		}
	}
	tmpLink := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmpLink)
	if err := os.Symlink(filepath.Base(tsDir), tmpLink); err != nil {
		return false, fmt.Errorf("symlink %s: %w", tmpLink, err)
	}
	if err := os.Rename(tmpLink, dataLink); err != nil {
		return false, fmt.Errorf("swap %s: %w", dataLink, err)
	}
	top := map[string]bool{}
	for p := range payload {
		top[strings.SplitN(p, "/", 2)[0]] = true
	}
	for name := range top {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			return false, fmt.Errorf("symlink %s: %w", link, err)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "..") && !top[e.Name()] {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	if oldTS != "" && strings.HasPrefix(oldTS, "..") && !strings.Contains(oldTS, "/") {
		_ = os.RemoveAll(filepath.Join(dir, oldTS))
	}
	return true, nil
}

func validPayloadPath(p string) error {
	if p == "" || filepath.IsAbs(p) || strings.HasPrefix(p, "..") || filepath.Clean(p) != p {
		return fmt.Errorf("invalid volume file path %q: must be relative, clean and not start with '..'", p)
	}
	return nil
}

func payloadUnchanged(dir string, payload map[string]payloadFile) bool {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		n++
		rel, _ := filepath.Rel(dir, p)
		f, ok := payload[rel]
		if !ok {
			return errors.New("extra")
		}
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != f.Mode.Perm() {
			return errors.New("mode")
		}
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(b, f.Data) {
			return errors.New("data")
		}
		return nil
	})
	return err == nil && n == len(payload)
}
