package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// Every command's help ends with its exit statuses, and every command has
// examples, the ones cobra adds (help, completion) included.

// exitStatus is what each command's exit status means, by command path.
var exitStatus = map[string]string{
	"unikfile init":         "0 the Unikfile was written; 1 one exists already, there is no go.mod, or it cannot be written.",
	"unikfile validate":     "0 every Unikfile is valid; 1 one has errors (printed with file:line:col), or an address matches nothing.",
	"unikfile fmt":          "0 every file is formatted (with --check: already was); 1 a file does not parse or cannot be written (the others are still formatted), or with --check one needs formatting.",
	"unikfile build":        "0 every image was built; 1 a bad Unikfile or address, a missing tool or kernel, a failed compile (with -k after building what it could); 130 interrupted (what it started is stopped).",
	"unikfile graph":        "0 the graph was printed; 1 a bad Unikfile or address.",
	"unikfile up":           "0 every target is up; 1 a build or boot failed, an app exited or did not become ready, a host port is in use, or a watch serves the target; with --attach, the app's own exit status; 130 interrupted (the VMs it was booting are stopped).",
	"unikfile watch":        "0 ended by Ctrl-C or SIGTERM (its VMs are stopped); 1 it could not start: a bad Unikfile, no QEMU target, a host port in use, the target watched by another watch or run by up, an inotify limit.",
	"unikfile ps":           "0 the list was printed (even when empty); 1 the state store cannot be read, or a bad address.",
	"unikfile logs":         "0 the console was printed (a follow ends with the instance or Ctrl-C); 1 no such app or instance here, or it has no console.",
	"unikfile down":         "0 the instances are stopped and removed (or there were none); 1 one could not be stopped, or a watch serves the target.",
	"unikfile images":       "0 the list was printed; 1 the cache cannot be read.",
	"unikfile kernel":       "0; see each subcommand.",
	"unikfile kernel fetch": "0 the kernel is in the cache (its path on stdout); 1 apt-get is missing or failed, or the package does not exist; 130 interrupted (the download is stopped and nothing is left in the cache).",
	"unikfile kernel ls":    "0 the list was printed; 1 the cache cannot be read.",
	"unikfile version":      "0.",
	"unikfile completion":   "0 the script was printed; 1 an unknown shell.",
	"unikfile help":         "0; 1 an unknown command.",
}

// examples are the examples of the commands cobra adds and of those that
// only group others.
var examples = map[string]string{
	"unikfile help": `  unikfile help             # the commands
  unikfile help up          # one command's flags, examples and exit status
  unikfile up --help        # the same`,
	"unikfile completion": `  source <(unikfile completion bash)                       # bash, this shell
  unikfile completion bash > /etc/bash_completion.d/unikfile # bash, for good
  unikfile completion zsh > "${fpath[1]}/_unikfile"          # zsh
  unikfile completion fish | source                          # fish`,
	"unikfile completion bash":       `  source <(unikfile completion bash)`,
	"unikfile completion zsh":        `  unikfile completion zsh > "${fpath[1]}/_unikfile"`,
	"unikfile completion fish":       `  unikfile completion fish > ~/.config/fish/completions/unikfile.fish`,
	"unikfile completion powershell": `  unikfile completion powershell | Out-String | Invoke-Expression`,
	"unikfile kernel": `  unikfile kernel fetch      # Debian's cloud kernel into the cache
  unikfile kernel ls         # the kernels there, the one builds use first
  unikfile kernel prune      # built kernels, sources and object trees nothing needs`,
	"unikfile version": `  unikfile version
  unikfile version | cut -d' ' -f2`,
}

// documentCommands adds cobra's help and completion commands now (so that
// they can be documented) and gives every command its examples and exit
// statuses.
func documentCommands(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		path := c.CommandPath()
		if ex, ok := examples[path]; ok && c.Example == "" {
			c.Example = ex
		}
		if st := exitStatus[path]; st != "" && !strings.Contains(c.Long, "Exit status:") {
			long := c.Long
			if long == "" {
				long = c.Short + "."
			}
			c.Long = strings.TrimRight(long, "\n") + "\n\n" + wrap("Exit status: "+st, 76)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// wrap breaks text into lines of at most width characters, at spaces.
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(text) {
		switch {
		case i == 0:
		case n+1+len(w) > width:
			b.WriteByte('\n')
			n = 0
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}
