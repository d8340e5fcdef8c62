// Package rofs writes OSv's read-only file system (ROFS), the root file
// system OSv mounts with --rootfs=rofs, from its on-disk format: 512-byte
// blocks holding a superblock (block 0), the files' data (each file from a
// block boundary), then the structure tables, which are a directory-entry
// table, a symbolic-link table and an inode table. The format is OSv's
// fs/rofs/rofs.hh, as OSv's kernel reads it (fs/rofs/rofs_vfsops.cc).
//
// It owns the format only: an in-memory tree of directories, files (bytes
// or a host file) and symbolic links, laid out in a fixed order (inodes
// breadth-first from the root, names in byte order), so that the same
// tree always gives the same bytes.
//
// It must not know what an OSv image holds (the osv package decides the
// files and the disk around them), read anything but the host files it is
// given, or write anywhere but the io.Writer it is handed.
package rofs
