package stamp

import (
	"bytes"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// RacyWindow is how long after a file's last change its metadata is not
// trusted to stand for its content: a file changed again within the same
// timestamp tick keeps its mtime (and, on coarse filesystems, its ctime).
// Two seconds cover the coarsest common filesystems (FAT) and the coarse
// clock the kernel stamps files with.
const RacyWindow = 2 * time.Second

// AbsentMode marks a path that did not exist when it was recorded (an
// ignore file, a go env file): its appearance is a change.
const AbsentMode = ^uint32(0)

// Entry is the metadata of one path as a stamp records it.
type Entry struct {
	Size, Mtime, Ctime int64 // Mtime and Ctime in unix ns
	Ino, Dev           uint64
	Mode               uint32
	Recorded           int64 // unix ns, when the metadata was read
}

// Meta reads fi's metadata, timestamps truncated to granularity (0 keeps
// nanoseconds; tests model coarse filesystems with it).
func Meta(fi fs.FileInfo, granularity time.Duration) (Entry, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Entry{}, false
	}
	return metaOf(st, granularity), true
}

// metaOf is Meta from the stat system call's own record: what a stamp's
// check reads, without the FileInfo os.Stat allocates for every path.
func metaOf(st *syscall.Stat_t, granularity time.Duration) Entry {
	return Entry{
		Size:  st.Size,
		Mtime: trunc(st.Mtim.Sec*1e9+st.Mtim.Nsec, granularity),
		Ctime: trunc(st.Ctim.Sec*1e9+st.Ctim.Nsec, granularity),
		Ino:   st.Ino,
		Dev:   uint64(st.Dev),
		Mode:  uint32(fileMode(st.Mode)),
	}
}

// fileMode is the fs.FileMode of a stat mode (type bits, permissions and
// the setuid, setgid and sticky bits), as os reports it: the stamps
// record fs.FileMode, which is what a FileInfo gives.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & syscall.S_IFMT {
	case syscall.S_IFBLK:
		mode |= fs.ModeDevice
	case syscall.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFDIR:
		mode |= fs.ModeDir
	case syscall.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case syscall.S_IFLNK:
		mode |= fs.ModeSymlink
	case syscall.S_IFSOCK:
		mode |= fs.ModeSocket
	}
	if m&syscall.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&syscall.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&syscall.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

func trunc(ns int64, g time.Duration) int64 {
	if g > 0 {
		return ns - ns%int64(g)
	}
	return ns
}

// Same reports whether e and o describe the same file state (Recorded
// aside).
func (e Entry) Same(o Entry) bool {
	return e.Size == o.Size && e.Mtime == o.Mtime && e.Ctime == o.Ctime && e.Ino == o.Ino && e.Dev == o.Dev && e.Mode == o.Mode
}

// Racy reports whether the file may have changed again within the
// timestamp tick of its last recorded change: its mtime or ctime (which,
// truncated to granularity, may stand for any time up to one tick later)
// is within RacyWindow of when the metadata was read.
func (e Entry) Racy(granularity time.Duration) bool {
	limit := e.Recorded - int64(RacyWindow) - int64(granularity)
	return e.Mtime >= limit || e.Ctime >= limit
}

// Invocation is a command as a stamp is keyed by it: everything that
// decides what the command does besides the files it reads.
type Invocation struct {
	Exe     string   // the executable's path (its metadata is one of the stamp's entries)
	Args    []string // the arguments as given, flags and addresses
	Dir     string   // the working directory
	Environ []string // the whole environment; Key keeps what a build reads
}

// Key is the invocation as text: a stamp holds it whole, and only an
// identical invocation replays the stamp.
func (inv Invocation) Key() string {
	var b strings.Builder
	b.WriteString("exe " + strconv.Quote(inv.Exe) + "\n")
	for _, a := range inv.Args {
		b.WriteString("arg " + strconv.Quote(a) + "\n")
	}
	b.WriteString("dir " + strconv.Quote(inv.Dir) + "\n")
	for _, kv := range Environ(inv.Environ) {
		b.WriteString("env " + strconv.Quote(kv) + "\n")
	}
	return b.String()
}

// Environ is what of environ a build reads: Go's and cgo's settings,
// unikfile's own (its variables, cache, kernel, executor), and what tools
// and settings files are found with; sorted.
func Environ(environ []string) []string {
	var env []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "GO"), strings.HasPrefix(name, "CGO_"), strings.HasPrefix(name, "UNIKFILE_"),
			name == "PATH", name == "HOME", strings.HasPrefix(name, "XDG_"):
			env = append(env, kv)
		}
	}
	sort.Strings(env)
	return env
}

// Path is where the stamp of inv lives in the cache at cacheDir.
func Path(cacheDir string, inv Invocation) string {
	h := fnv.New128a()
	io.WriteString(h, inv.Key())
	const digits = "0123456789abcdef"
	var name []byte
	for _, c := range h.Sum(nil) {
		name = append(name, digits[c>>4], digits[c&15])
	}
	return strings.TrimSuffix(cacheDir, "/") + "/stamps/" + string(name)
}

// Replay is what a replayed build prints. Stderr holds Elapsed where the
// replay's own duration goes.
type Replay struct {
	Stdout, Stderr []byte
}

// Elapsed marks, in Replay.Stderr, where the duration of the replay is
// printed.
const Elapsed = "\x00elapsed\x00"

// Print writes r, with elapsed (rounded as the CLI rounds durations) in
// place of Elapsed, stderr first.
func (r Replay) Print(stdout, stderr io.Writer, elapsed time.Duration) error {
	// Written around each mark rather than copied with the duration in
	// it: a replay of a large tree is a hundred kilobytes or more.
	rest, took := r.Stderr, Round(elapsed).String()
	for len(rest) > 0 {
		i := strings.Index(string(rest), Elapsed)
		if i < 0 {
			i = len(rest)
		}
		if _, err := stderr.Write(rest[:i]); err != nil {
			return err
		}
		if rest = rest[i:]; len(rest) > 0 {
			if _, err := io.WriteString(stderr, took); err != nil {
				return err
			}
			rest = rest[len(Elapsed):]
		}
	}
	if len(r.Stdout) > 0 {
		if _, err := stdout.Write(r.Stdout); err != nil {
			return err
		}
	}
	return nil
}

// Round rounds d for people: microseconds below a millisecond,
// milliseconds below a second, then hundredths of a second.
func Round(d time.Duration) time.Duration {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond)
	case d < time.Second:
		return d.Round(time.Millisecond)
	default:
		return d.Round(10 * time.Millisecond)
	}
}

// header begins every stamp file. The file is the header, the quoted key,
// "replay" and the byte lengths of what a replay prints on stdout and
// stderr, those bytes as they are, then one line per path: the path and
// its Entry's fields, tab-separated.
const header = "unikfile stamp v3"

// Encode is the stamp file of key, entries and r. Paths with a tab or a
// newline cannot be recorded: ok is false and the build records no stamp.
func Encode(key string, entries map[string]Entry, r Replay) (data []byte, ok bool) {
	paths := make([]string, 0, len(entries))
	for p := range entries {
		if strings.ContainsAny(p, "\t\n") {
			return nil, false
		}
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var b []byte
	b = append(b, header+"\n"...)
	b = append(b, strconv.Quote(key)+"\n"...)
	b = append(b, "replay "+strconv.Itoa(len(r.Stdout))+" "+strconv.Itoa(len(r.Stderr))+"\n"...)
	b = append(append(b, r.Stdout...), r.Stderr...)
	for _, p := range paths {
		e := entries[p]
		b = append(b, p...)
		for _, v := range []int64{e.Size, e.Mtime, e.Ctime} {
			b = append(append(b, '\t'), strconv.FormatInt(v, 10)...)
		}
		for _, v := range []uint64{e.Ino, e.Dev, uint64(e.Mode)} {
			b = append(append(b, '\t'), strconv.FormatUint(v, 10)...)
		}
		b = append(append(b, '\t'), strconv.FormatInt(e.Recorded, 10)...)
		b = append(b, '\n')
	}
	return b, true
}

// parse splits a stamp file into its quoted key, its replay and its path
// lines; ok is false when data is not a whole stamp. The replay's bytes
// are data's own; lines is a view of data, which must not change after.
func parse(data []byte) (quotedKey string, r Replay, lines string, ok bool) {
	var head [3]string
	rest := data
	for i := range head {
		n := bytes.IndexByte(rest, '\n')
		if n < 0 {
			return "", Replay{}, "", false
		}
		head[i], rest = string(rest[:n]), rest[n+1:]
	}
	var nout, nerr int
	if head[0] != header || !readLengths(head[2], &nout, &nerr) || nout+nerr > len(rest) {
		return "", Replay{}, "", false
	}
	r.Stdout, r.Stderr = rest[:nout:nout], rest[nout:nout+nerr:nout+nerr]
	rest = rest[nout+nerr:]
	// A view, not a copy: a large tree's lines are a few hundred kilobytes,
	// read on the critical path of a no-op, and nothing writes data after.
	return head[1], r, unsafe.String(unsafe.SliceData(rest), len(rest)), true
}

// readLengths parses "replay N M".
func readLengths(l string, nout, nerr *int) bool {
	f := strings.Fields(strings.TrimPrefix(l, "replay "))
	if !strings.HasPrefix(l, "replay ") || len(f) != 2 {
		return false
	}
	var err1, err2 error
	*nout, err1 = strconv.Atoi(f[0])
	*nerr, err2 = strconv.Atoi(f[1])
	return err1 == nil && err2 == nil && *nout >= 0 && *nerr >= 0
}

// Check reads the stamp at path and returns what to replay if it was
// recorded for key and every path it lists still has the metadata it had,
// and had not changed within RacyWindow of when it was recorded; n is how
// many paths were checked. Any doubt is false. The paths are checked on
// every CPU at once: a stamp of a large tree lists thousands, and the
// answer is on the critical path of a no-op.
func Check(path, key string, granularity time.Duration) (r Replay, n int, ok bool) {
	r, n, _, ok = check(path, key, granularity, false)
	return r, n, ok
}

// CheckChanged is Check that, when the stamp is this invocation's but does
// not hold, goes on to list every path it records whose metadata changed
// (or is in doubt). A build uses that list to start the work those paths
// feed first (see Changed). changed is nil when ok is true or the stamp is
// missing, unreadable or another invocation's.
func CheckChanged(path, key string, granularity time.Duration) (r Replay, n int, changed []string, ok bool) {
	return check(path, key, granularity, true)
}

func check(path, key string, granularity time.Duration, collect bool) (r Replay, n int, changed []string, ok bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Replay{}, 0, nil, false
	}
	quoted, r, text, ok := parse(data)
	if !ok {
		return Replay{}, 0, nil, false
	}
	if k, err := strconv.Unquote(quoted); err != nil || k != key {
		return Replay{}, 0, nil, false
	}
	lines := strings.Split(text, "\n")
	workers := min(runtime.GOMAXPROCS(0), (len(lines)+chunk-1)/chunk)
	var failed atomic.Bool
	var checked atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			var mine []string
			// Worker w takes chunks w, w+workers, ...: each gets near
			// and far paths alike. Without collect the first changed
			// path ends every worker.
			for lo := w * chunk; lo < len(lines) && (collect || !failed.Load()); lo += workers * chunk {
				for _, l := range lines[lo:min(lo+chunk, len(lines))] {
					if l == "" {
						continue
					}
					if !lineHolds(l, granularity) {
						failed.Store(true)
						if !collect {
							return
						}
						p, _, _ := strings.Cut(l, "\t")
						mine = append(mine, p)
						continue
					}
					n++
				}
			}
			checked.Add(int64(n))
			mu.Lock()
			changed = append(changed, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if failed.Load() {
		sort.Strings(changed)
		return Replay{}, 0, changed, false
	}
	return r, int(checked.Load()), nil, true
}

// chunk is how many stamp lines a worker checks at a time.
const chunk = 64

// lineHolds reports whether the path of one stamp line still has the
// metadata recorded there.
func lineHolds(l string, granularity time.Duration) bool {
	// Eight tab-separated fields, cut in place (a no-op build reads a
	// line per input and output, and nothing else allocates as much).
	var f [8]string
	rest := l
	for i := range f {
		var found bool
		f[i], rest, found = strings.Cut(rest, "\t")
		if found != (i < len(f)-1) {
			return false
		}
	}
	var want Entry
	var errs [7]error
	want.Size, errs[0] = strconv.ParseInt(f[1], 10, 64)
	want.Mtime, errs[1] = strconv.ParseInt(f[2], 10, 64)
	want.Ctime, errs[2] = strconv.ParseInt(f[3], 10, 64)
	want.Ino, errs[3] = strconv.ParseUint(f[4], 10, 64)
	want.Dev, errs[4] = strconv.ParseUint(f[5], 10, 64)
	mode, err := strconv.ParseUint(f[6], 10, 32)
	errs[5] = err
	want.Mode = uint32(mode)
	want.Recorded, errs[6] = strconv.ParseInt(f[7], 10, 64)
	for _, err := range errs {
		if err != nil {
			return false
		}
	}
	// The system call itself, into a record on this goroutine's stack:
	// os.Stat would allocate a FileInfo for every line.
	var st syscall.Stat_t
	err = syscall.Stat(f[0], &st)
	if want.Mode == AbsentMode {
		return err == syscall.ENOENT
	}
	return err == nil && metaOf(&st, granularity).Same(want) && !want.Racy(granularity)
}

// Paths lists the paths the stamp at path records (what its build relied
// on and produced); ok is false when the file is not a stamp.
func Paths(path string) (paths []string, ok bool, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	_, _, lines, ok := parse(data)
	if !ok {
		return nil, false, nil
	}
	for _, l := range strings.Split(lines, "\n") {
		if p, _, found := strings.Cut(l, "\t"); found {
			paths = append(paths, p)
		}
	}
	return paths, true, nil
}
