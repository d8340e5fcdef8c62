package compile

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// PortHint is a TCP port a Go program's source shows it listens on, and
// where: what `unikfile init` writes into ports instead of guessing.
type PortHint struct {
	Port int
	// Pos is file:line relative to the scanned folder; How says what was
	// seen ("http.ListenAndServe", "a PORT default").
	Pos, How string
}

// maxScanFiles bounds the Go files GoListenPorts parses.
const maxScanFiles = 2000

// GoListenPorts finds the ports a Go module's main package (the .go files
// of dir; if none there says, the rest of the module) listens on, read
// from its source without building it:
//
//   - a string literal ":9090" or "0.0.0.0:9090" passed to a function
//     named ListenAndServe, ListenAndServeTLS, Listen or ListenTCP (net/http,
//     net, and frameworks that wrap them: gin's Run, echo's Start), or set
//     as an http.Server's Addr;
//   - a PORT environment default: a literal port assigned to a variable
//     named like port or addr next to os.Getenv("PORT"), or the fallback of
//     cmp.Or(os.Getenv("PORT"), "9090");
//   - a flag's default: flag.String("addr", ":9090", ...), flag.Int("port", 9090, ...).
//
// Ports on a loopback address are left out: the host cannot reach them.
// It returns the hints of the first folder that has any, ports in order
// of appearance, each once.
func GoListenPorts(dir string) []PortHint {
	if hints := scanGoFiles(dir, goFilesIn(dir)); len(hints) > 0 {
		return hints
	}
	var files []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		name := d.Name()
		if d.IsDir() {
			if p != dir && (name == "vendor" || name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			if p != dir {
				if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
					return filepath.SkipDir // another module
				}
			}
			return nil
		}
		if isGoSource(name) && filepath.Dir(p) != dir && len(files) < maxScanFiles {
			files = append(files, p)
		}
		return nil
	})
	return scanGoFiles(dir, files)
}

func isGoSource(name string) bool {
	return strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")
}

func goFilesIn(dir string) []string {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, de := range des {
		if de.Type().IsRegular() && isGoSource(de.Name()) {
			out = append(out, filepath.Join(dir, de.Name()))
		}
	}
	sort.Strings(out)
	return out
}

// maxGoFileSize skips generated giants.
const maxGoFileSize = 1 << 20

func scanGoFiles(root string, files []string) []PortHint {
	var hints []PortHint
	seen := map[int]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.Size() > maxGoFileSize {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			continue
		}
		for _, h := range fileHints(fset, file) {
			if seen[h.Port] {
				continue
			}
			seen[h.Port] = true
			pos := fset.Position(h.pos)
			rel, err := filepath.Rel(root, pos.Filename)
			if err != nil {
				rel = pos.Filename
			}
			h.Pos = filepath.ToSlash(rel) + ":" + strconv.Itoa(pos.Line)
			hints = append(hints, h.PortHint)
		}
	}
	return hints
}

type hint struct {
	PortHint
	pos token.Pos
}

// listenFuncs are the call names whose first address-like argument is a
// listen address.
var listenFuncs = map[string]bool{
	"ListenAndServe": true, "ListenAndServeTLS": true, "Listen": true, "ListenTCP": true,
	"Run": true, "Start": true,
}

func fileHints(fset *token.FileSet, f *ast.File) []hint {
	var out []hint
	readsPortEnv := false
	ast.Inspect(f, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok && isGetenvPort(c) {
			readsPortEnv = true
		}
		return true
	})
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CallExpr:
			name, pkg := callName(n)
			switch {
			case listenFuncs[name]:
				for _, a := range n.Args {
					if p, ok := addrPort(a); ok {
						out = append(out, hint{PortHint{Port: p, How: qualified(pkg, name)}, a.Pos()})
						break
					}
				}
			case pkg == "cmp" && name == "Or" && len(n.Args) >= 2 && anyGetenvPort(n.Args):
				for _, a := range n.Args {
					if p, ok := portLit(a); ok {
						out = append(out, hint{PortHint{Port: p, How: "the default of the PORT environment variable"}, a.Pos()})
						break
					}
				}
			case pkg == "flag" && len(n.Args) >= 2 && isPortName(stringLit(n.Args[0])):
				switch name {
				case "String", "StringVar", "Int", "IntVar", "Uint", "UintVar":
					a := n.Args[1]
					if strings.HasSuffix(name, "Var") && len(n.Args) >= 3 {
						a = n.Args[2]
					}
					if p, ok := portLit(a); ok {
						out = append(out, hint{PortHint{Port: p, How: "the default of flag -" + stringLit(n.Args[0])}, a.Pos()})
					}
				}
			}
		case *ast.KeyValueExpr:
			if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Addr" {
				if p, ok := addrPort(n.Value); ok {
					out = append(out, hint{PortHint{Port: p, How: "a server's Addr"}, n.Value.Pos()})
				}
			}
		case *ast.AssignStmt:
			if !readsPortEnv || len(n.Lhs) != len(n.Rhs) {
				return true
			}
			for i, l := range n.Lhs {
				id, ok := l.(*ast.Ident)
				if !ok || !isPortName(id.Name) {
					continue
				}
				if p, ok := portLit(n.Rhs[i]); ok {
					out = append(out, hint{PortHint{Port: p, How: "the default of the PORT environment variable"}, n.Rhs[i].Pos()})
				}
			}
		}
		return true
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].pos < out[j].pos })
	return out
}

func qualified(pkg, name string) string {
	if pkg == "" {
		return name
	}
	return pkg + "." + name
}

// callName is the called function's name and, for pkg.F or x.F, the
// qualifier's name.
func callName(c *ast.CallExpr) (name, pkg string) {
	switch f := c.Fun.(type) {
	case *ast.Ident:
		return f.Name, ""
	case *ast.SelectorExpr:
		if id, ok := f.X.(*ast.Ident); ok {
			return f.Sel.Name, id.Name
		}
		return f.Sel.Name, ""
	}
	return "", ""
}

func isGetenvPort(c *ast.CallExpr) bool {
	name, pkg := callName(c)
	return pkg == "os" && (name == "Getenv" || name == "LookupEnv") && len(c.Args) == 1 && stringLit(c.Args[0]) == "PORT"
}

func anyGetenvPort(args []ast.Expr) bool {
	for _, a := range args {
		if c, ok := a.(*ast.CallExpr); ok && isGetenvPort(c) {
			return true
		}
	}
	return false
}

func isPortName(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "port") || strings.Contains(s, "addr") || s == "listen"
}

func stringLit(e ast.Expr) string {
	b, ok := e.(*ast.BasicLit)
	if !ok || b.Kind != token.STRING {
		return ""
	}
	s, err := strconv.Unquote(b.Value)
	if err != nil {
		return ""
	}
	return s
}

// addrPort reads a listen address literal: ":9090", "0.0.0.0:9090",
// "[::]:9090". Loopback addresses and port 0 do not count.
func addrPort(e ast.Expr) (int, bool) {
	s := stringLit(e)
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return 0, false
	}
	host := strings.Trim(s[:i], "[]")
	switch {
	case host == "localhost", strings.HasPrefix(host, "127."), host == "::1":
		return 0, false
	}
	return parsePort(s[i+1:])
}

// portLit reads a port given alone: "9090", ":9090" or 9090.
func portLit(e ast.Expr) (int, bool) {
	if b, ok := e.(*ast.BasicLit); ok && b.Kind == token.INT {
		return parsePort(b.Value)
	}
	s := stringLit(e)
	if strings.Contains(s, ":") {
		return addrPort(e)
	}
	return parsePort(s)
}

func parsePort(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > 65535 {
		return 0, false
	}
	return n, true
}
