package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrImage is returned (wrapped) by Start when an image is not in the image table or its
// binary is missing; the kubelet reports it as reason ErrImagePull with the message.
var ErrImage = errors.New("unknown image")

// toolboxImage has no entrypoint: its command runs on the host's userland.
const toolboxImage = "weft/toolbox"

// imageBinary maps an image reference to the name of its binary in BinDir. ok is false for
// images outside the table; name is "" for weft/toolbox (no entrypoint).
//
//	weft/proxy:*         weft-proxy
//	weft/controller:*    weft-controller
//	weft/demo-<name>:*   demo-<name>
//	weft/testapp:*       weft-testapp
//	weft/toolbox:*       (none)
func imageBinary(image string) (name string, ok bool) {
	repo := imageRepo(image)
	switch {
	case repo == "weft/proxy":
		return "weft-proxy", true
	case repo == "weft/controller":
		return "weft-controller", true
	case repo == "weft/testapp":
		return "weft-testapp", true
	case repo == toolboxImage:
		return "", true
	case strings.HasPrefix(repo, "weft/demo-") && len(repo) > len("weft/demo-"):
		return strings.TrimPrefix(repo, "weft/"), true
	}
	return "", false
}

// imageRepo strips a digest, a tag and the docker.io / localhost registry prefixes.
func imageRepo(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	for _, p := range []string{"docker.io/", "localhost/"} {
		image = strings.TrimPrefix(image, p)
	}
	return image
}

// resolveCommand applies Docker's entrypoint rules to the image table: command replaces the
// entrypoint, args replace the default args (the mapped binaries have none). A command[0]
// equal to the image's binary name (or "/" + name) runs the mapped binary; any other command
// is looked up on pathEnv (the container's PATH). It returns the executable path and argv.
func resolveCommand(binDir, image string, command, args []string, pathEnv string) (string, []string, error) {
	bin, ok := imageBinary(image)
	if !ok {
		return "", nil, fmt.Errorf("image %q is not in the local image table (weft/proxy, weft/controller, weft/demo-<name>, weft/testapp, weft/toolbox): %w", image, ErrImage)
	}
	var binPath string
	if bin != "" {
		binPath = filepath.Join(binDir, bin)
		if err := checkExecutable(binPath); err != nil {
			return "", nil, fmt.Errorf("image %q maps to binary %s: %v (run make build): %w", image, binPath, err, ErrImage)
		}
	}
	if len(command) == 0 {
		if bin == "" {
			return "", nil, fmt.Errorf("image %q has no entrypoint: the container needs a command", image)
		}
		return binPath, append([]string{bin}, args...), nil
	}
	argv := append(append([]string(nil), command...), args...)
	c0 := command[0]
	if bin != "" && (c0 == bin || c0 == "/"+bin) {
		return binPath, argv, nil
	}
	p, err := lookPath(c0, pathEnv)
	if err != nil {
		return "", nil, fmt.Errorf("container command %q: %w", c0, err)
	}
	return p, argv, nil
}

func checkExecutable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		return err
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not executable", p)
	}
	return nil
}

// lookPath finds file on the colon-separated path list (exec.LookPath with a given PATH).
func lookPath(file, pathEnv string) (string, error) {
	if strings.Contains(file, "/") {
		if err := checkExecutable(file); err != nil {
			return "", err
		}
		return file, nil
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q: %w in $PATH (%s)", file, exec.ErrNotFound, pathEnv)
}
