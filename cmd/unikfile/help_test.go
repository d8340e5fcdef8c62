package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Every command says how to use it (examples) and what its exit status
// means, the commands cobra adds included.
func TestEveryCommandHasExamplesAndExitStatus(t *testing.T) {
	root := newCLI().rootCommand()
	var walk func(c *cobra.Command)
	seen := 0
	walk = func(c *cobra.Command) {
		if c.Hidden {
			return
		}
		seen++
		if c.Example == "" {
			t.Errorf("%s has no example", c.CommandPath())
		}
		if c.HasParent() && !strings.Contains(c.Long, "Exit status:") && !strings.Contains(c.Parent().Long, "Exit status:") {
			t.Errorf("%s does not document its exit status", c.CommandPath())
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	for _, name := range []string{"completion", "help", "kernel", "version"} {
		if c, _, err := root.Find([]string{name}); err != nil || c.Name() != name || c.Example == "" {
			t.Errorf("%s: %v, example %q", name, err, c.Example)
		}
	}
	if seen < 20 {
		t.Errorf("only %d commands seen", seen)
	}
}
