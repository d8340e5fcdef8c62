package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// A console copy rotates at its limit into .1, keeps two generations, and
// reads back as the newest part of what was written, in order.
func TestConsoleCopyRotatesAndReadsBothGenerations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	c, err := CreateConsoleCopy(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	for i := range 50 {
		line := fmt.Sprintf("line %02d\n", i) // 8 bytes
		all.WriteString(line)
		if _, err := c.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, RotatedConsole(path)} {
		fi, err := os.Stat(f)
		if err != nil || fi.Size() > 104 {
			t.Fatalf("%s: %v; want at most 104 bytes", f, err)
		}
	}
	if m, _ := filepath.Glob(path + "*"); len(m) != 2 {
		t.Errorf("files %v, want two generations", m)
	}
	got := ReadConsoleCopy(path)
	if len(got) < 100 || !bytes.HasSuffix(all.Bytes(), got) {
		t.Errorf("read back %q; want the end of what was written", got)
	}
	// A new copy at the same place starts empty, without the old .1.
	c, err = CreateConsoleCopy(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("new\n"))
	c.Close()
	if got := ReadConsoleCopy(path); string(got) != "new\n" {
		t.Errorf("after a new start: %q", got)
	}
}

// Between a rotation's rename and create only .1 is there: it is the
// console; with neither, opening fails as a missing file.
func TestOpenConsoleCopyWithOneOrNoGeneration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	if _, err := OpenConsoleCopy(path); !os.IsNotExist(err) {
		t.Errorf("no console: %v", err)
	}
	os.WriteFile(RotatedConsole(path), []byte("older\n"), 0o600)
	if got := ReadConsoleCopy(path); string(got) != "older\n" {
		t.Errorf("only .1: %q", got)
	}
}

func TestConsoleMaxFromEnvironment(t *testing.T) {
	t.Setenv(ConsoleMaxEnv, "4096")
	if got := ConsoleMax(); got != 4096 {
		t.Errorf("ConsoleMax with %s=4096: %d", ConsoleMaxEnv, got)
	}
	for _, bad := range []string{"", "0", "-5", "8M"} {
		t.Setenv(ConsoleMaxEnv, bad)
		if got := ConsoleMax(); got != DefaultConsoleMax {
			t.Errorf("ConsoleMax with %s=%q: %d, want the default", ConsoleMaxEnv, bad, got)
		}
	}
}
