package run

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// One writer for both streams, as the compile stages pass their log: the
// writes reach it one at a time (go test -race fails otherwise) and none is
// lost.
func TestOneWriterForBothStreams(t *testing.T) {
	var buf bytes.Buffer
	_, err := Run(context.Background(), Cmd{
		Path:   "sh",
		Args:   []string{"-c", `i=0; while [ $i -lt 300 ]; do echo out; echo err >&2; i=$((i+1)); done`},
		Stdout: &buf, Stderr: &buf,
	})
	if err != nil {
		t.Fatal(err)
	}
	if o, e := strings.Count(buf.String(), "out\n"), strings.Count(buf.String(), "err\n"); o != 300 || e != 300 {
		t.Fatalf("got %d lines of stdout and %d of stderr, want 300 each", o, e)
	}
}
