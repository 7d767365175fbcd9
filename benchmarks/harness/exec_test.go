package harness

import "os/exec"

func execCombined(args []string) ([]byte, error) {
	return exec.Command(args[0], args[1:]...).CombinedOutput()
}
