// Package elfdeps completes an app bundle with the shared-library closure
// of its ELF files: the program interpreter (PT_INTERP, the dynamic loader)
// and every library named by DT_NEEDED, looked up the way glibc's loader
// does (DT_RPATH when there is no DT_RUNPATH, DT_RUNPATH with $ORIGIN, the
// directories of /etc/ld.so.conf, then the system directories), first in
// the bundle and then in the filesystem libraries come from (FS: the host's
// by default, a folder holding another root with Dir, or a builder image
// that the buildkit executor reads through BuildKit). Files keep their
// paths in the bundle, and symbolic links on the way (a library's soname
// link, the loader's /lib64 link) are recreated so that the loader finds
// what it looks for.
//
// It reads ELF headers with debug/elf and never executes a binary. A
// library that cannot be found is a *MissingError naming it and the file
// that needs it.
//
// It also writes the few files of /etc that programs linked against the C
// library expect (EtcFiles).
//
// It must not know about languages, images or kernels: the compile stage
// calls it after a language has put its program (and runtime) into the
// bundle.
package elfdeps
