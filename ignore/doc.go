// Package ignore decides which files of a source tree are inputs: it reads
// .unikignore (gitignore-style patterns) and applies the built-in rules
// (VCS folders, editor temp files, folders unikfile writes to).
//
// It must not read file contents; digests and file watching build on it.
package ignore
