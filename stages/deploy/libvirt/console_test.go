package libvirt

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/unikfile/unikfile/stages/deploy"
)

// The console kept at removal is the console's end in at most two
// generations, the newer beginning with a line, read back whole.
func TestKeepConsole(t *testing.T) {
	const max = 1000
	p := &Provider{ConsoleMax: max}
	var line100 bytes.Buffer
	for i := 0; line100.Len() < 1900; i++ {
		fmt.Fprintf(&line100, "line %04d %s\r\n", i, bytes.Repeat([]byte("x"), 88))
	}
	for _, c := range []struct {
		name string
		b    []byte
		two  bool
	}{
		{"short", line100.Bytes()[:700], false},
		{"longer than the limit", line100.Bytes()[:1900], true},
		{"no newline", bytes.Repeat([]byte("y"), 1500), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := p.keepConsole(dir, c.b); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, ConsoleFile)
			if got := deploy.ReadConsoleCopy(path); !bytes.Equal(got, c.b) {
				t.Errorf("read back %d bytes, want %d", len(got), len(c.b))
			}
			older, err := os.ReadFile(deploy.RotatedConsole(path))
			if (err == nil) != c.two {
				t.Fatalf("older generation: %v (want one: %v)", err, c.two)
			}
			cur, _ := os.ReadFile(path)
			if c.two && (len(cur) > max || !bytes.HasPrefix(cur, []byte("line ")) || !bytes.HasSuffix(older, []byte("\n"))) {
				t.Errorf("the generations are not split at a line: older ends %q, newer (%d bytes) begins %q", older[len(older)-10:], len(cur), cur[:10])
			}
		})
	}
}
