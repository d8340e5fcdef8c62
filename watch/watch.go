package watch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/unikfile/unikfile/ignore"
)

// Default coalescing: a batch goes out after Quiet without events, and at
// the latest MaxDelay after its first event.
const (
	DefaultQuiet    = 100 * time.Millisecond
	DefaultMaxDelay = 5 * time.Second
)

// Skipped are the patterns (gitignore syntax, see package ignore) that are
// never watched nor reported: version control folders and the temporary
// files editors write while saving (vim's swap files and its 4913 probe,
// emacs' lock and auto-save files, backup files, JetBrains' safe-write
// files, GNOME's output streams).
var Skipped = []string{
	".git/", ".hg/", ".svn/", ".bzr/", ".jj/", ".unikfile/",
	"*~", ".*.swp", ".*.swx", ".*.swo", ".*.swpx", "4913", ".#*", "#*#",
	"*___jb_tmp___", "*___jb_old___", ".goutputstream-*", ".DS_Store",
}

// Options tune a Watcher.
type Options struct {
	// Quiet and MaxDelay shape coalescing; 0 means the defaults.
	Quiet, MaxDelay time.Duration
	// Ignore, when set, is asked about every absolute path before it is
	// watched (directories) or reported (files); true skips it.
	Ignore func(path string, isDir bool) bool
}

// Watcher watches one directory tree.
type Watcher struct {
	root    string
	opts    Options
	skip    *ignore.Matcher
	fsw     *fsnotify.Watcher
	changes chan []string
	errs    chan error
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

// New starts watching root and every directory below it that is not
// skipped. Errors name the directory and, for inotify limits, what to raise.
func New(root string, opts Options) (*Watcher, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if opts.Quiet <= 0 {
		opts.Quiet = DefaultQuiet
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	if opts.MaxDelay < opts.Quiet {
		opts.MaxDelay = opts.Quiet
	}
	skip, err := ignore.New(Skipped)
	if err != nil {
		return nil, err
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, limitError(abs, err)
	}
	w := &Watcher{root: abs, opts: opts, skip: skip, fsw: fsw,
		changes: make(chan []string), errs: make(chan error, 16), done: make(chan struct{})}
	if _, err := w.addTree(abs); err != nil {
		_ = fsw.Close()
		return nil, err
	}
	w.wg.Go(w.loop)
	return w, nil
}

// Changes delivers batches of changed paths (absolute, sorted, unique). A
// path may be a directory: the root after the kernel's event queue
// overflowed means "anything may have changed".
func (w *Watcher) Changes() <-chan []string { return w.changes }

// Errors delivers problems that do not stop the watcher, e.g. a new
// directory that could not be watched.
func (w *Watcher) Errors() <-chan error { return w.errs }

// Close stops watching and ends the goroutine; it is idempotent.
func (w *Watcher) Close() error {
	var err error
	w.once.Do(func() {
		close(w.done)
		err = w.fsw.Close()
		w.wg.Wait()
	})
	return err
}

// skipped reports whether path (absolute, under the root) is never watched
// or reported.
func (w *Watcher) skipped(path string, isDir bool) bool {
	rel, err := filepath.Rel(w.root, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return true
	}
	if rel != "." && w.skip.Match(rel, isDir) {
		return true
	}
	return w.opts.Ignore != nil && w.opts.Ignore(path, isDir)
}

// addTree watches dir and the directories below it; it returns the files
// found, which a just-created directory may already hold.
func (w *Watcher) addTree(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path != dir && errors.Is(err, fs.ErrNotExist) {
				return nil // gone meanwhile
			}
			return err
		}
		if !d.IsDir() {
			if !w.skipped(path, false) {
				files = append(files, path)
			}
			return nil
		}
		if path != dir && w.skipped(path, true) {
			return filepath.SkipDir
		}
		if err := w.fsw.Add(path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return filepath.SkipDir
			}
			return limitError(path, err)
		}
		return nil
	})
	return files, err
}

func (w *Watcher) loop() {
	pending := map[string]struct{}{}
	var ready []string
	var first time.Time
	var timer *time.Timer
	var timerC <-chan time.Time
	add := func(p string) {
		if len(pending) == 0 {
			first = time.Now()
		}
		pending[p] = struct{}{}
		wait := min(w.opts.Quiet, time.Until(first.Add(w.opts.MaxDelay)))
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		timerC = timer.C
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		var out chan []string
		if len(ready) > 0 {
			out = w.changes
		}
		select {
		case <-w.done:
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			w.event(ev, add)
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				add(w.root)
				continue
			}
			w.report(err)
		case <-timerC:
			timerC = nil
			for p := range pending {
				ready = append(ready, p)
			}
			slices.Sort(ready)
			ready = slices.Compact(ready)
			clear(pending)
		case out <- ready:
			ready = nil
		}
	}
}

func (w *Watcher) event(ev fsnotify.Event, add func(string)) {
	if ev.Op == fsnotify.Chmod {
		return // metadata only: no content changed
	}
	fi, err := os.Lstat(ev.Name)
	isDir := err == nil && fi.IsDir()
	if w.skipped(ev.Name, isDir) {
		return
	}
	if isDir && ev.Has(fsnotify.Create) {
		files, err := w.addTree(ev.Name)
		if err != nil {
			w.report(err)
		}
		for _, f := range files {
			add(f)
		}
	}
	add(ev.Name)
}

func (w *Watcher) report(err error) {
	select {
	case w.errs <- err:
	default: // nobody reads: drop rather than block the watcher
	}
}

// limitError turns the errors inotify gives at its limits into ones that say
// which sysctl to raise.
func limitError(path string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("watch %s: the inotify watch limit is reached (fs.inotify.max_user_watches = %s, shared by every program of this user); "+
			"raise it: sudo sysctl fs.inotify.max_user_watches=524288 (add the line to /etc/sysctl.d/ to keep it), or list big folders in .unikignore: %w",
			path, sysctl("max_user_watches"), err)
	case errors.Is(err, syscall.EMFILE):
		return fmt.Errorf("watch %s: the inotify instance limit is reached (fs.inotify.max_user_instances = %s, shared by every program of this user); "+
			"raise it: sudo sysctl fs.inotify.max_user_instances=1024 (add the line to /etc/sysctl.d/ to keep it), or stop other watchers (it is also the error at this process's open-file limit, ulimit -n): %w",
			path, sysctl("max_user_instances"), err)
	}
	return fmt.Errorf("watch %s: %w", path, err)
}

func sysctl(name string) string {
	b, err := os.ReadFile("/proc/sys/fs/inotify/" + name)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
