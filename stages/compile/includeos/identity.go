package includeos

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/unikfile/unikfile/internal/run"
)

// Identity names everything of the toolchain outside the SDK folder that
// can change a service build: each program the toolchain file names, CMake
// and the build program, each as its resolved path and what it says its
// version is. The SDK folder's own files are digested apart (they are an
// input folder of the compile). A missing program is an error that says
// what to install.
func (s *SDK) Identity(ctx context.Context) (string, error) {
	if err := s.CheckTools(); err != nil {
		return "", err
	}
	gen, prog, err := Generator()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "includeos sdk %s; generator %s", s.Dir, gen)
	progs := []struct{ name, hint string }{{"cmake", cmakeHint}, {prog, ninjaHint}}
	for _, t := range s.Tools {
		progs = append(progs, struct{ name, hint string }{t.Program, ToolHint(t.Program)})
	}
	for _, p := range progs {
		id, err := version(ctx, p.name, p.hint)
		if err != nil {
			return "", err
		}
		b.WriteString("; " + id)
	}
	return b.String(), nil
}

// version is a program's resolved path and version output.
func version(ctx context.Context, program, hint string) (string, error) {
	p, err := run.Look(program, hint)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		real = p
	}
	arg := "--version"
	if filepath.Base(real) == "nasm" {
		arg = "-v"
	}
	res, err := run.Run(ctx, run.Cmd{Path: p, Args: []string{arg}, Hint: hint})
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", program, arg, err)
	}
	out := strings.TrimSpace(string(res.Stdout) + string(res.Stderr))
	if i := strings.IndexByte(out, '\n'); i >= 0 {
		out = out[:i] // the first line names the version; later ones name paths
	}
	return fmt.Sprintf("%s=%s (%s) %q", program, p, real, out), nil
}
