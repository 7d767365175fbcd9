package svcproxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// cmdTimeout bounds every iptables, iptables-restore and conntrack invocation.
const cmdTimeout = 30 * time.Second

// runner runs the iptables tools, optionally inside a named network namespace.
type runner struct {
	netns string // "" means the agent's own namespace
}

// run runs name with args, feeding stdin, and returns its stdout. The error carries stderr.
func (r runner) run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	if r.netns != "" {
		args = append([]string{"netns", "exec", r.netns, name}, args...)
		name = "ip"
	}
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// restore applies an iptables-restore payload without flushing chains it does not mention.
func (r runner) restore(ctx context.Context, payload []byte) error {
	if _, err := r.run(ctx, payload, "iptables-restore", "-w", "5", "--noflush"); err != nil {
		return fmt.Errorf("iptables-restore: %w\n%s", err, numbered(payload))
	}
	return nil
}

// ensureJump inserts j at the top of its built-in chain unless it is already there.
func (r runner) ensureJump(ctx context.Context, j jump) error {
	spec := append([]string{"-w", "5", "-t", j.table}, "-C", j.chain)
	if _, err := r.run(ctx, nil, "iptables", append(spec, j.args...)...); err == nil {
		return nil
	}
	spec = append([]string{"-w", "5", "-t", j.table}, "-I", j.chain, "1")
	if _, err := r.run(ctx, nil, "iptables", append(spec, j.args...)...); err != nil {
		return fmt.Errorf("insert jump into %s/%s: %w", j.table, j.chain, err)
	}
	return nil
}

// deleteJump removes every copy of j; a missing rule or chain is not an error.
func (r runner) deleteJump(ctx context.Context, j jump) {
	for range 10 {
		spec := append([]string{"-w", "5", "-t", j.table, "-D", j.chain}, j.args...)
		if _, err := r.run(ctx, nil, "iptables", spec...); err != nil {
			return
		}
	}
}

// listChains returns the names of the chains in table.
func (r runner) listChains(ctx context.Context, table string) ([]string, error) {
	out, err := r.run(ctx, nil, "iptables-save", "-t", table)
	if err != nil {
		return nil, err
	}
	var chains []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if name, ok := strings.CutPrefix(sc.Text(), ":"); ok {
			chains = append(chains, strings.Fields(name)[0])
		}
	}
	return chains, sc.Err()
}

// numbered prefixes lines with their numbers, as iptables-restore errors refer to line numbers.
func numbered(b []byte) string {
	var sb strings.Builder
	for i, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		fmt.Fprintf(&sb, "%4d %s\n", i+1, l)
	}
	return sb.String()
}
