package main

import (
	"strings"
	"testing"
)

func TestRunRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		want string
	}{
		{nil, "missing command"},
		{[]string{"sideways"}, `unknown command "sideways"`},
		{[]string{"up", "--bogus"}, "flag provided but not defined"},
		{[]string{"down", "extra"}, "unexpected arguments"},
		{[]string{"status", "--cache-dir", dir, "--bin-dir", dir}, "not fully healthy"},
		{[]string{"up", "--cache-dir", dir, "--bin-dir", dir}, "run make kube-bins"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			err := run(tt.args)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%q) = %v, want error containing %q", tt.args, err, tt.want)
			}
		})
	}
}
