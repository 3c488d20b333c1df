package main

import (
	"strings"
	"testing"
)

// TestServeLimitFlags: limits that would turn the server off are refused
// by name, before the model loads.
func TestServeLimitFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--write-timeout", "0s"}, "--write-timeout must be positive"},
		{[]string{"serve", "--read-timeout=-1s"}, "--read-timeout must be positive"},
		{[]string{"serve", "--read-header-timeout", "0s"}, "--read-header-timeout must be positive"},
		{[]string{"serve", "--max-body", "0"}, "--max-body must be at least 1 byte"},
		{[]string{"serve", "--max-reading", "0"}, "--max-reading must be at least 1"},
		{[]string{"serve", "--max-connections", "0"}, "--max-connections must be at least 1"},
		{[]string{"serve", "--max-decoding=-1"}, "--max-decoding must be 0"},
		{[]string{"serve", "--max-queue", "0"}, "--max-queue must be at least 1"},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(t, "", c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want a failure mentioning %q", c.args, code, stderr, c.want)
		}
	}
}
