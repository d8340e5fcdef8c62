package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// exampleFiles reads examples/<name> into a file map for newProject.
func exampleFiles(t *testing.T, name string) map[string]string {
	t.Helper()
	root := filepath.Join("..", "examples", name)
	files := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files[rel] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// slowGet fetches / with a patient client: a JVM's or an interpreter's
// first answer under TCG can take many seconds.
func slowGet(t *testing.T, port int) string {
	t.Helper()
	client := &http.Client{Timeout: 90 * time.Second}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		resp, err := client.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return string(b)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET 127.0.0.1:%d: %v", port, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestExamplesBootAndAnswer builds each language's example, boots it under
// QEMU and asks it over HTTP, one at a time.
func TestExamplesBootAndAnswer(t *testing.T) {
	needBoot(t)
	for _, c := range []struct{ example, want string }{
		{"elf", "hello from an ELF binary"},
		{"c", "hello from C"},
		{"cpp", "hello from C++"},
		{"rust", "hello from Rust"},
		{"python", "hello from Python"},
		{"node", "hello from Node.js"},
		{"java", "hello from Java"},
	} {
		t.Run(c.example, func(t *testing.T) {
			p := newProject(t, exampleFiles(t, c.example))
			if c.example == "elf" {
				// The user brings a dynamic binary; unikfile packs its libraries.
				if out, err := exec.Command("gcc", "-O2", "-o", filepath.Join(p.dir, "server"), filepath.Join("..", "examples", "c", "server.c")).CombinedOutput(); err != nil {
					t.Fatalf("gcc: %v\n%s", err, out)
				}
			}
			port := freePort(t)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			cmd := p.command(ctx, "up", "--var", "port="+strconv.Itoa(port), "--timeout", "10m")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("up: %v\n%s", err, out)
			}
			if got := slowGet(t, port); !strings.Contains(got, c.want) {
				t.Fatalf("GET = %q, want %q", got, c.want)
			}
			p.ok("down")
		})
	}
}

func TestMissingToolchainAndLibraryFailTheBuild(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	// A PATH with Go (for the guest init) and nothing else: no cargo.
	bin := t.TempDir()
	os.Symlink(goBin, filepath.Join(bin, "go"))
	p := newProject(t, exampleFiles(t, "rust"))
	p.env = append(p.env, "PATH="+bin)
	r := p.run("build")
	if r.code != 1 || !strings.Contains(r.stderr, "cargo not found in PATH; install Rust: apt-get install cargo") {
		t.Fatalf("want exit 1 and how to install cargo, got %d:\n%s", r.code, r.stderr)
	}

	// A binary linked against a library that is then hidden.
	q := newProject(t, exampleFiles(t, "elf"))
	lib := t.TempDir()
	gcc := func(args ...string) {
		if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
			t.Fatalf("gcc %v: %v\n%s", args, err, out)
		}
	}
	q.write("g.c", "int greet(void) { return 0; }\n")
	q.write("m.c", "int greet(void);\nint main(void) { return greet(); }\n")
	gcc("-shared", "-fPIC", "-Wl,-soname,libgreet.so.1", "-o", filepath.Join(lib, "libgreet.so.1"), filepath.Join(q.dir, "g.c"))
	os.Symlink("libgreet.so.1", filepath.Join(lib, "libgreet.so"))
	gcc("-o", filepath.Join(q.dir, "server"), filepath.Join(q.dir, "m.c"), "-L"+lib, "-lgreet", "-Wl,-rpath,"+lib)
	os.Remove(filepath.Join(lib, "libgreet.so.1"))
	r = q.run("build")
	if r.code != 1 || !strings.Contains(r.stderr, "shared library libgreet.so.1, needed by /app/server, was not found") {
		t.Fatalf("want exit 1 naming libgreet.so.1 and /app/server, got %d:\n%s", r.code, r.stderr)
	}
}
