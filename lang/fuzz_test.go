package lang_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/unikfile/unikfile/lang"
)

// fuzzSeeds are the repository's Unikfiles and a few hostile shapes; the
// corpus in testdata/fuzz holds more.
func fuzzSeeds(f *testing.F) {
	files, _ := filepath.Glob("../examples/*/Unikfile")
	files = append(files, "../Unikfile.example")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"x = " + strings.Repeat("[", 200),
		`locals { a = join("", [for i in range(100) : format("%10s", "")]) }`,
		"app \"a\" {\n  language = \"go\"\n  args = [\"\x00\"]\n}\n",
		"app \"\x1b]0;pwned\x07\" {}\n",
		"variable \"v\" {\n  default = 1\n}\napp \"a\" {\n  language = \"go\"\n  memory = \"${var.v}MiB\"\n}\ntarget \"t\" {\n  provider = \"qemu\"\n  apps = [app.a, \"sub:web\"]\n  qemu {\n    host_ports = { 8080 = 9000, \"08080\" = 9001 }\n  }\n}\n",
	} {
		f.Add([]byte(s))
	}
}

// FuzzLoad: decoding and evaluating any bytes as a Unikfile, with the
// real catalog, never panics, and what it says about them is printable:
// the rendered diagnostics (text and JSON) hold no raw control character.
func FuzzLoad(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, FileName)
		if err := os.WriteFile(path, src, 0o644); err != nil {
			t.Fatal(err)
		}
		_, files, diags := Load(path, Options{Catalog: catalog, Environ: []string{}})
		if !diags.HasErrors() {
			return
		}
		var out bytes.Buffer
		if err := WriteDiagnostics(&out, diags, files, false); err != nil {
			t.Fatal(err)
		}
		if i := bytes.IndexFunc(out.Bytes(), isRawControl); i >= 0 {
			t.Fatalf("raw control character %q in the diagnostics at byte %d:\n%q", out.Bytes()[i], i, out.String())
		}
		for _, d := range DiagnosticsJSON(diags) {
			if strings.IndexFunc(d.Summary+d.Detail, isRawControl) >= 0 {
				t.Fatalf("raw control character in a JSON diagnostic: %q %q", d.Summary, d.Detail)
			}
		}
	})
}

// FuzzFormat: fmt never panics, and what it writes parses again and is
// already formatted: formatting never breaks a Unikfile.
func FuzzFormat(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		out, diags := Format(src, FileName)
		if diags.HasErrors() {
			return
		}
		again, diags := Format(out, FileName)
		if diags.HasErrors() {
			t.Fatalf("the formatted file does not parse: %v\nin:\n%q\nout:\n%q", diags, src, out)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("formatting is not stable:\nin:\n%q\nonce:\n%q\ntwice:\n%q", src, out, again)
		}
	})
}

// isRawControl is a control character a terminal acts on (tab and line
// breaks are layout).
func isRawControl(r rune) bool {
	return (r < 0x20 && r != '\n' && r != '\t' && r != '\r') || r == 0x7f || (r >= 0x80 && r < 0xa0)
}
