package lang

import (
	"fmt"
	"strings"
)

// Scaffold returns a starter Unikfile for the Go module modulePath, for
// `unikfile init`: one app called name (usually the directory's name,
// made into a valid app name if it is not one) built from the Unikfile's
// directory and listening on port 8080, and a qemu target "dev" running
// it. The result loads without diagnostics and is already formatted.
func Scaffold(name string, modulePath string) []byte {
	return ScaffoldPorts(name, modulePath, []int{DefaultScaffoldPort})
}

// DefaultScaffoldPort is the port a scaffold declares when it was told none.
const DefaultScaffoldPort = 8080

// ScaffoldPorts is Scaffold declaring the given ports (none: DefaultScaffoldPort).
func ScaffoldPorts(name string, modulePath string, ports []int) []byte {
	if len(ports) == 0 {
		ports = []int{DefaultScaffoldPort}
	}
	list := make([]string, len(ports))
	for i, p := range ports {
		list[i] = fmt.Sprint(p)
	}
	app := NameFrom(name)
	var b strings.Builder
	if modulePath != "" {
		fmt.Fprintf(&b, "# Unikfile for %s.\n", strings.ReplaceAll(modulePath, "\n", " "))
	} else {
		b.WriteString("# Unikfile: apps to build as unikernels, and targets to run them on.\n")
	}
	fmt.Fprintf(&b, `# Build and boot it with "unikfile up dev".

app %[1]q {
  source   = "."
  language = "go"
  main     = "."
  ports    = [%[2]s]
  memory   = "256MiB"
}

target "dev" {
  provider = "qemu"
  apps     = [app.%[1]s]
}
`, app, strings.Join(list, ", "))
	return []byte(b.String())
}

// NameFrom makes s (a directory's name, say) into a valid app name:
// lower case, runs of other characters turned into "-", "app" in front of
// what does not start with a letter.
func NameFrom(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		case b.Len() > 0:
			b.WriteRune('-')
		}
	}
	name := strings.Trim(b.String(), "-_")
	if name == "" || !validName(name) {
		name = "app" + name
		if !validName(name) {
			name = "app"
		}
	}
	return name
}
