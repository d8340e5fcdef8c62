package lang

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Limits on what a Unikfile may hold. They are far above any real
// project's needs and keep a hostile or broken file from exhausting the
// machine: the parser recurses on nesting, and a few function calls can
// build gigabytes.
const (
	// MaxFileSize is the largest Unikfile read.
	MaxFileSize = 4 << 20
	// MaxNesting is the deepest nesting of blocks, brackets, braces,
	// parentheses and template interpolations.
	MaxNesting = 64
	// MaxStringBytes is the longest string a value may hold, and
	// MaxElements the most elements a list, set, map or object may hold.
	MaxStringBytes = 1 << 20
	MaxElements    = 10000
	// MaxNameLength is the longest app or target name: names become
	// instance IDs and guest host names (a DNS label holds 63).
	MaxNameLength = 48
	// MaxEvalBytes bounds what evaluating one Unikfile may produce in
	// all: the sizes of every function result and every value added up.
	MaxEvalBytes = 64 << 20
)

// ReadFile reads a Unikfile: a regular file (not a FIFO, a device or a
// directory, which could block or never end) of at most MaxFileSize bytes.
// It never blocks on what a path names.
func ReadFile(path string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO without a writer returns at once instead
	// of waiting for one; regular files ignore it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("not a regular file (%s): a Unikfile is a text file", kindOf(fi.Mode()))}
	}
	if fi.Size() > MaxFileSize {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%d bytes, more than a Unikfile may hold (%d MiB)", fi.Size(), MaxFileSize>>20)}
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFileSize {
		return nil, &fs.PathError{Op: "read", Path: path, Err: errors.New("it grew past the size a Unikfile may hold while it was read")}
	}
	return b, nil
}

func kindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}

// checkNesting reports the first place src nests deeper than MaxNesting,
// from its tokens alone (the lexer does not recurse; the parser does, so
// this runs first).
func checkNesting(src []byte, filename string) hcl.Diagnostics {
	tokens, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	depth := 0
	for _, t := range tokens {
		switch t.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen,
			hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl, hclsyntax.TokenOQuote, hclsyntax.TokenOHeredoc:
			depth++
			if depth > MaxNesting {
				return hcl.Diagnostics{errorAt(t.Range, "Nesting too deep",
					fmt.Sprintf("This nests more than %d levels deep (blocks, brackets, braces, parentheses and templates counted together); a Unikfile never needs that many: flatten it.", MaxNesting))}
			}
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen,
			hclsyntax.TokenTemplateSeqEnd, hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc:
			depth = max(depth-1, 0)
		}
	}
	return nil
}
