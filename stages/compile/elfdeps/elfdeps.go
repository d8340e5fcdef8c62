package elfdeps

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// SystemDirs are the directories glibc's loader searches last on Debian's
// x86-64 (its trusted directories), in order. A library found in one of
// them needs nothing more in the image.
var SystemDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"}

// LdSoConf is the loader's configuration on the host.
const LdSoConf = "/etc/ld.so.conf"

// MissingError says a shared library could not be found.
type MissingError struct {
	Library  string   // the DT_NEEDED name, e.g. libfoo.so.1
	NeededBy string   // the file that needs it, as a path in the image
	Searched []string // the directories looked in, in order
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("shared library %s, needed by %s, was not found (searched %s): install the package that provides it on this host (apt-file search %s), or put it in the app's source next to the binary with a RUNPATH of $ORIGIN",
		e.Library, e.NeededBy, strings.Join(e.Searched, ", "), e.Library)
}

// Result is what Pack added.
type Result struct {
	// Added are the image paths copied from the host (files and links),
	// sorted.
	Added []string
	// LibraryPath lists directories, outside the loader's system
	// directories, where libraries were found through /etc/ld.so.conf;
	// the image has no ld.so.cache, so the app needs them in
	// LD_LIBRARY_PATH (LibraryPathEnv).
	LibraryPath []string
	// Dynamic reports whether any file has a program interpreter, that
	// is, whether the C library's run-time files are needed.
	Dynamic bool
}

// LibraryPathEnv is LD_LIBRARY_PATH=... for r.LibraryPath, or "".
func (r *Result) LibraryPathEnv() string {
	if len(r.LibraryPath) == 0 {
		return ""
	}
	return "LD_LIBRARY_PATH=" + strings.Join(r.LibraryPath, ":")
}

// Options tune Pack; the zero value is the host's configuration.
type Options struct {
	// ConfDirs are the directories of the loader's configuration, searched
	// after DT_RUNPATH and before SystemDirs; nil reads LdSoConf in From.
	ConfDirs []string
	// Provided are the sonames (and loader names, matched by base name)
	// that the base's kernel supplies itself: they are neither looked up
	// nor copied, and neither are their dependencies.
	Provided []string
	// LinkDir, if set, is the one directory the base's loader searches
	// besides DT_RUNPATH: every library found outside the DT_RUNPATH
	// directories gets a symbolic link LinkDir/NAME to where it was put
	// (NAME as DT_NEEDED says it), and LibraryPath stays empty.
	LinkDir string
	// From is the filesystem the loader and libraries are copied from
	// when the bundle lacks them; nil is the host's (Host). It is read
	// only when a file of the bundle needs something.
	From FS
}

// Pack makes the bundle at root complete for the ELF files named by roots
// (image paths, e.g. "/app/server"; files that are not ELF are skipped):
// their interpreters and libraries, and those of the libraries, are
// copied from opts.From (the host) into root at the same paths, unless
// root already has them.
func Pack(root string, roots []string, opts Options) (*Result, error) {
	from := opts.From
	if from == nil {
		from = Host
	}
	p := &packer{root: root, from: from, conf: opts.ConfDirs, seen: map[string]bool{}, sonames: map[string]bool{}, libPath: map[string]bool{}, res: &Result{},
		provided: map[string]bool{}, linkDir: opts.LinkDir, links: map[string]string{}}
	for _, n := range opts.Provided {
		p.provided[n] = true
	}
	// Roots may be loaded by the program itself (dlopen, as java loads
	// libjvm.so) before the libraries that name them in DT_NEEDED; the
	// loader then matches those names against the sonames it has loaded.
	for _, ip := range roots {
		if real, ok := p.inRoot(ip); ok {
			if f, err := elf.Open(real); err == nil {
				if so, _ := f.DynString(elf.DT_SONAME); len(so) > 0 {
					p.sonames[so[0]] = true
				}
				f.Close()
			}
		}
	}
	queue := append([]string(nil), roots...)
	for len(queue) > 0 {
		ip := queue[0]
		queue = queue[1:]
		more, err := p.visit(ip)
		if err != nil {
			return nil, err
		}
		queue = append(queue, more...)
	}
	if err := p.link(); err != nil {
		return nil, err
	}
	sort.Strings(p.res.Added)
	for d := range p.libPath {
		p.res.LibraryPath = append(p.res.LibraryPath, d)
	}
	sort.Strings(p.res.LibraryPath)
	return p.res, nil
}

type packer struct {
	root    string
	from    FS
	conf    []string        // nil until needed: then read from from's LdSoConf
	seen    map[string]bool // real paths in root already visited
	sonames map[string]bool // DT_SONAME of the roots
	libPath map[string]bool
	res     *Result

	provided map[string]bool
	linkDir  string
	links    map[string]string // LinkDir name -> image path of the library
}

// link makes the links of LinkDir, in name order; names the bundle
// already has there are left alone.
func (p *packer) link() error {
	if p.linkDir == "" {
		return nil
	}
	names := make([]string, 0, len(p.links))
	for n := range p.links {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ip := path.Join(p.linkDir, n)
		if ip == p.links[n] {
			continue
		}
		dst := filepath.Join(p.root, filepath.FromSlash(ip))
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(p.links[n], dst); err != nil {
			return err
		}
		p.res.Added = append(p.res.Added, ip)
	}
	return nil
}

// visit reads one ELF file in the image and returns the image paths of
// what it needs, after bringing them into root.
func (p *packer) visit(ip string) ([]string, error) {
	real, ok := p.inRoot(ip)
	if !ok {
		return nil, fmt.Errorf("%s is not in the bundle", ip)
	}
	if p.seen[real] {
		return nil, nil
	}
	p.seen[real] = true
	fh, err := os.Open(real)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ip, err)
	}
	defer fh.Close()
	info, err := readELF(fh)
	if errors.Is(err, errNotELF) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ip, err)
	}
	var next []string
	if info.interp != "" && p.provided[path.Base(info.interp)] {
		p.res.Dynamic = true // the base supplies its loader
	} else if info.interp != "" {
		if err := p.bring(info.interp); err != nil {
			return nil, fmt.Errorf("%s needs the loader %s: %w", ip, info.interp, err)
		}
		p.res.Dynamic = true
		next = append(next, info.interp)
	}
	needed := info.needed
	if len(needed) == 0 {
		return next, nil
	}
	var dirs []string
	if len(info.runpath) == 0 {
		dirs = append(dirs, expand(info.rpath, ip)...)
	}
	dirs = append(dirs, expand(info.runpath, ip)...)
	if p.conf == nil {
		if p.conf, err = ReadLdSoConfFrom(p.from, LdSoConf); err != nil {
			return nil, err
		}
	}
	confStart := len(dirs)
	dirs = append(dirs, p.conf...)
	sysStart := len(dirs)
	dirs = append(dirs, SystemDirs...)
	for _, name := range needed {
		if strings.Contains(name, "/") {
			if err := p.bring(name); err != nil {
				return nil, &MissingError{Library: name, NeededBy: ip}
			}
			next = append(next, name)
			continue
		}
		if p.sonames[name] || p.provided[name] {
			continue
		}
		found := ""
		for i, d := range dirs {
			cand := path.Join(d, name)
			if p.usable(cand) {
				switch {
				case i >= confStart && p.linkDir != "":
					p.links[name] = cand
				case i >= confStart && i < sysStart && !isSystemDir(d):
					p.libPath[path.Clean(d)] = true
				}
				found = cand
				break
			}
		}
		if found == "" {
			return nil, &MissingError{Library: name, NeededBy: ip, Searched: dedupe(dirs)}
		}
		if err := p.bring(found); err != nil {
			return nil, fmt.Errorf("%s needs %s: %w", ip, found, err)
		}
		next = append(next, found)
	}
	return next, nil
}

// errNotELF is readELF's error for a file that is not an ELF file.
var errNotELF = errors.New("not an ELF file")

// elfInfo is what the closure needs of an ELF file.
type elfInfo struct {
	interp                 string // PT_INTERP, "" for none
	needed, runpath, rpath []string
}

// maxInterp bounds PT_INTERP (a path).
const maxInterp = 4096

// readELF reads the program interpreter and the dynamic section's
// DT_NEEDED, DT_RUNPATH and DT_RPATH of the ELF file in r. Files that are
// not ELF are errNotELF; ELF files for another machine than x86-64, or
// whose interpreter is not an absolute path, are errors.
func readELF(r io.ReaderAt) (elfInfo, error) {
	var info elfInfo
	f, err := elf.NewFile(r)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return info, errNotELF
		}
		return info, fmt.Errorf("read: %w", err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return info, fmt.Errorf("a %v %v ELF file; only x86-64 (amd64) programs can run on this base", f.Class, f.Machine)
	}
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		if prog.Filesz > maxInterp {
			return info, fmt.Errorf("a program interpreter of %d bytes", prog.Filesz)
		}
		b, err := io.ReadAll(prog.Open())
		if err != nil {
			return info, fmt.Errorf("read the interpreter: %w", err)
		}
		interp := strings.TrimRight(string(b), "\x00")
		if !path.IsAbs(interp) {
			return info, fmt.Errorf("the program interpreter %q is not an absolute path", interp)
		}
		info.interp = interp
		break
	}
	if info.needed, err = f.DynString(elf.DT_NEEDED); err != nil {
		return info, fmt.Errorf("read: %w", err)
	}
	info.runpath, _ = f.DynString(elf.DT_RUNPATH)
	info.rpath, _ = f.DynString(elf.DT_RPATH)
	return info, nil
}

func isSystemDir(d string) bool {
	for _, s := range SystemDirs {
		if path.Clean(d) == s {
			return true
		}
	}
	return false
}

func dedupe(dirs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range dirs {
		d = path.Clean(d)
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// expand splits a DT_RPATH/DT_RUNPATH value and replaces $ORIGIN with the
// directory of the file that carries it; entries with other tokens or
// relative paths (which depend on the working directory) are dropped.
func expand(values []string, ip string) []string {
	var out []string
	origin := path.Dir(ip)
	for _, v := range values {
		for _, d := range strings.Split(v, ":") {
			d = strings.ReplaceAll(d, "${ORIGIN}", origin)
			d = strings.ReplaceAll(d, "$ORIGIN", origin)
			d = strings.ReplaceAll(d, "$LIB", "lib/x86_64-linux-gnu")
			d = strings.ReplaceAll(d, "${LIB}", "lib/x86_64-linux-gnu")
			d = strings.ReplaceAll(d, "$PLATFORM", "x86_64")
			d = strings.ReplaceAll(d, "${PLATFORM}", "x86_64")
			if d == "" || !path.IsAbs(d) || strings.Contains(d, "$") {
				continue
			}
			out = append(out, path.Clean(d))
		}
	}
	return out
}

// usable reports whether an x86-64 ELF file is at image path ip, in the
// bundle or else in the filesystem libraries come from (the loader skips
// files of another class).
func (p *packer) usable(ip string) bool {
	if file, ok := p.inRoot(ip); ok {
		f, err := elf.Open(file)
		if err != nil {
			return false
		}
		defer f.Close()
		return isAMD64(f)
	}
	fi, err := statFollow(p.from, ip)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	r, err := p.from.Open(ip)
	if err != nil {
		return false
	}
	defer r.Close()
	f, err := elf.NewFile(r)
	if err != nil {
		return false
	}
	return isAMD64(f)
}

func isAMD64(f *elf.File) bool { return f.Class == elf.ELFCLASS64 && f.Machine == elf.EM_X86_64 }

// inRoot resolves image path ip inside root, following symbolic links as
// the guest would (absolute targets start again at root). It returns the
// host path of the file and whether it exists.
func (p *packer) inRoot(ip string) (string, bool) {
	rest := strings.Split(strings.Trim(path.Clean("/"+ip), "/"), "/")
	cur := "/"
	for hops := 0; len(rest) > 0; {
		c := rest[0]
		rest = rest[1:]
		if c == "" || c == "." {
			continue
		}
		if c == ".." {
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		fi, err := os.Lstat(filepath.Join(p.root, filepath.FromSlash(next)))
		if err != nil {
			return "", false
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", false
		}
		target, err := os.Readlink(filepath.Join(p.root, filepath.FromSlash(next)))
		if err != nil {
			return "", false
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(strings.Trim(target, "/"), "/"), rest...)
	}
	return filepath.Join(p.root, filepath.FromSlash(cur)), true
}

// bring copies path hp of the filesystem libraries come from into root at
// the same path unless root has it. Symbolic links are recreated and
// followed; directories on the way are real directories in root.
func (p *packer) bring(hp string) error {
	for hops := 0; ; hops++ {
		if hops > 40 {
			return fmt.Errorf("%s: too many levels of symbolic links", hp)
		}
		hp = path.Clean(hp)
		if _, ok := p.inRoot(hp); ok {
			return nil
		}
		fi, err := p.from.Lstat(hp)
		if err != nil {
			return err
		}
		dst := filepath.Join(p.root, filepath.FromSlash(hp))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, err := p.from.ReadLink(hp)
			if err != nil {
				return err
			}
			// A link that already exists but leads nowhere yet is
			// completed by following it.
			if _, err := os.Lstat(dst); err != nil {
				if err := os.Symlink(target, dst); err != nil {
					return err
				}
				p.res.Added = append(p.res.Added, hp)
			}
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(hp), target)
			}
			hp = target
			continue
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", hp)
		}
		if err := copyFile(p.from, hp, dst, fi.Mode().Perm()); err != nil {
			return err
		}
		p.res.Added = append(p.res.Added, hp)
		return nil
	}
}

func copyFile(from FS, src, dst string, perm fs.FileMode) error {
	in, err := from.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm|0o200)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// ReadLdSoConf reads the directories of a loader configuration file of
// the host and the files it includes, in order. A missing file is no
// directories.
func ReadLdSoConf(file string) ([]string, error) { return ReadLdSoConfFrom(Host, file) }

// ReadLdSoConfFrom is ReadLdSoConf in the filesystem fsys.
func ReadLdSoConfFrom(fsys FS, file string) ([]string, error) {
	dirs := []string{}
	err := readConf(fsys, file, &dirs, 0)
	return dirs, err
}

func readConf(fsys FS, file string, dirs *[]string, depth int) error {
	if depth > 10 {
		return fmt.Errorf("%s: includes nest too deep", file)
	}
	f, err := fsys.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if fields[0] == "include" {
			for _, pat := range fields[1:] {
				if !path.IsAbs(pat) {
					pat = path.Join(path.Dir(file), pat)
				}
				matches, _ := fsys.Glob(pat)
				sort.Strings(matches)
				for _, m := range matches {
					// ldconfig reads nothing from a match that is no
					// file (a folder, a dangling link) and goes on.
					if fi, err := statFollow(fsys, m); err != nil || !fi.Mode().IsRegular() {
						continue
					}
					if err := readConf(fsys, m, dirs, depth+1); err != nil {
						return err
					}
				}
			}
			continue
		}
		for _, d := range fields {
			if path.IsAbs(d) {
				*dirs = append(*dirs, path.Clean(d))
			}
		}
	}
	return sc.Err()
}

// ELFFiles lists the regular files under dir in root (an image path) that
// are ELF files, as image paths, sorted.
func ELFFiles(root, dir string) ([]string, error) {
	var out []string
	base := filepath.Join(root, filepath.FromSlash(dir))
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if isELF(p) {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			out = append(out, "/"+filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

func isELF(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [4]byte
	_, err = io.ReadFull(f, magic[:])
	return err == nil && string(magic[:]) == elf.ELFMAG
}

// Bring copies the files at paths of from into root at the same paths,
// with the symbolic links on the way, unless root has them.
func Bring(root string, from FS, paths []string) error {
	p := &packer{root: root, from: from, res: &Result{}}
	for _, hp := range paths {
		if err := p.bring(hp); err != nil {
			return err
		}
	}
	return nil
}
