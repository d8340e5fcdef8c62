package address

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/unikfile/unikfile/lang"
)

// Address is one parsed address.
type Address struct {
	// Raw is the address as given.
	Raw string
	// Dir is the directory, slash-separated and relative to the base
	// directory (-C); "." is the base itself.
	Dir string
	// Recursive is a trailing "/..." (or "..."): Dir and every folder
	// below it.
	Recursive bool
	// Name is the app or target after the colon, or the plain name; ""
	// means all of them.
	Name string
	// Plain is an address with no directory (dev, or :dev): a name in
	// the current Unikfile, which --file may name.
	Plain bool
}

// Parse reads an address:
//
//	dev                  target or app dev of the current Unikfile (as before addresses)
//	:dev                 the same
//	services/api         every app (build) or target (up) of services/api/Unikfile
//	services/api:dev     target or app dev of services/api/Unikfile
//	./...                every Unikfile here and below
//	./...:prod           target prod of every Unikfile below that declares it
//	services/...         every Unikfile in services and below
//
// A word without a slash or a colon is a name, not a directory: write
// ./api for the directory api.
func Parse(s string) (Address, error) {
	a := Address{Raw: s}
	if s == "" {
		return a, fmt.Errorf("empty address")
	}
	dir, name, hasColon := strings.Cut(s, ":")
	if hasColon && strings.Contains(name, ":") {
		return a, fmt.Errorf("address %q has more than one colon; write DIR:NAME, e.g. services/api:dev", s)
	}
	if !hasColon && !strings.Contains(s, "/") && s != "." && s != ".." && s != "..." {
		return Address{Raw: s, Dir: ".", Name: s, Plain: true}, validName(s, s)
	}
	if hasColon && name == "" {
		return a, fmt.Errorf("address %q ends in a colon; name a target or app after it, or drop the colon", s)
	}
	a.Name = name
	if dir == "" {
		a.Dir, a.Plain = ".", true
		return a, validName(s, name)
	}
	if dir == "..." {
		dir = "./..."
	}
	if strings.HasSuffix(dir, "/...") {
		a.Recursive = true
		dir = strings.TrimSuffix(dir, "/...")
		if dir == "" {
			return a, fmt.Errorf("address %q: write ./... for the current directory and below", s)
		}
	}
	if strings.Contains(dir, "...") {
		return a, fmt.Errorf("address %q: ... stands only at the end of the directory (services/...)", s)
	}
	if filepath.IsAbs(dir) {
		return a, fmt.Errorf("address %q: directories are relative to the project directory (-C)", s)
	}
	a.Dir = filepath.ToSlash(filepath.Clean(dir))
	if a.Name != "" {
		return a, validName(s, a.Name)
	}
	return a, nil
}

func validName(raw, name string) error {
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '_' || r == '-'):
		default:
			return fmt.Errorf("address %q: %q is not a target or app name (letters, digits, '_' and '-', starting with a letter)", raw, name)
		}
	}
	return nil
}

// ParseAll parses every address.
func ParseAll(args []string) ([]Address, error) {
	out := make([]Address, 0, len(args))
	for _, s := range args {
		a, err := Parse(s)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// IsWorkspace reports whether addrs reach beyond the current Unikfile (a
// directory or a pattern), which is when the CLI loads a workspace of
// several Unikfiles and namespaces node names by directory.
func IsWorkspace(addrs []Address) bool {
	for _, a := range addrs {
		if !a.Plain {
			return true
		}
	}
	return false
}

// Files returns the Unikfiles addrs name, found from base. mainFile is
// the current Unikfile (-C/--file), the one plain names refer to; it is
// returned first when a plain address is given or when addrs is empty.
// saw, if not nil, is called with every folder searched (lang.DiscoverSeeing).
func Files(base, mainFile string, addrs []Address, saw func(string)) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(addrs) == 0 {
		add(mainFile)
	}
	for _, a := range addrs {
		switch {
		case a.Plain:
			add(mainFile)
		case a.Recursive:
			found, err := lang.DiscoverSeeing(filepath.Join(base, filepath.FromSlash(a.Dir)), saw)
			if err != nil {
				return nil, err
			}
			if len(found) == 0 {
				return nil, fmt.Errorf("address %q: no Unikfile in %s or below", a.Raw, filepath.Join(base, filepath.FromSlash(a.Dir)))
			}
			for _, f := range found {
				add(f)
			}
		default:
			f, err := lang.FindFile(filepath.Join(base, filepath.FromSlash(a.Dir)))
			if err != nil {
				return nil, fmt.Errorf("address %q: %w", a.Raw, err)
			}
			add(f)
		}
	}
	return out, nil
}

// matches reports whether a names project p (by directory).
func (a Address) matches(base, mainDir string, p *lang.Project) bool {
	if a.Plain {
		return p.Dir == mainDir
	}
	dir := filepath.Join(base, filepath.FromSlash(a.Dir))
	if !a.Recursive {
		return p.Dir == dir
	}
	rel, err := filepath.Rel(dir, p.Dir)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// Dirs returns the project directories addrs name among dirs (for ps and
// down, which work from instance records without loading Unikfiles).
func (a Address) MatchesDir(base, mainDir, dir string) bool {
	return a.matches(base, mainDir, &lang.Project{Dir: dir})
}
