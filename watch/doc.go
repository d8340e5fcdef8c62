// Package watch reports changes to a directory tree: it watches every
// directory under a root with fsnotify (never single files, since editors
// save by writing a temporary file and renaming it over the original), adds
// directories created later, skips what never matters (version control
// folders, editor temporary files, and whatever the caller's ignore
// function rejects, such as the folders unikfile writes to), and coalesces
// a burst of events into one batch: a batch is sent once the tree has been
// quiet for a short time, or after an upper bound when it never is.
//
// When the kernel's inotify limits are reached, the error names the sysctl
// to raise (fs.inotify.max_user_watches or fs.inotify.max_user_instances).
//
// It must not know what the files are for: mapping changed paths to apps and
// deciding what to rebuild is the watch loop's job (package devloop).
package watch
