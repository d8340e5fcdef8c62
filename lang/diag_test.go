package lang_test

import (
	"bytes"
	"encoding/json"
	. "github.com/unikfile/unikfile/lang"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

const renderUnikfile = `app "api" {
  language = "go"
  ports    = [8080]
  memory   = "12MiB"
}
`

func TestWriteDiagnostics(t *testing.T) {
	path := project(t, renderUnikfile)
	_, sources, diags := Load(path, Options{Catalog: catalog, Environ: noEnv})
	if len(diags) != 1 {
		t.Fatalf("want one diagnostic; got %s", diags.Error())
	}
	for _, color := range []bool{false, true} {
		var buf bytes.Buffer
		if err := WriteDiagnostics(&buf, diags, sources, color); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		for _, want := range []string{
			"Error",
			"Invalid memory size",
			path + ":4:14",                      // file:line:col
			`in app "api"`,                      // the enclosing block
			`   4:   memory   = "12MiB"` + "\n", // the source line, numbered
			"\n" + strings.Repeat(" ", 6+13) + "^^^^^^^\n", // the range, underlined
			"at least 64MiB",
		} {
			if color && strings.Contains(want, "^") {
				want = "^^^^^^^" // carets are wrapped in color codes
			}
			if !strings.Contains(out, want) {
				t.Errorf("color=%v: output lacks %q:\n%s", color, want, out)
			}
		}
		if hasESC := strings.Contains(out, "\x1b["); hasESC != color {
			t.Errorf("color=%v but escape codes present=%v", color, hasESC)
		}
	}
}

func TestWriteDiagnosticsWithoutSource(t *testing.T) {
	rng := hcl.Range{Filename: "Unikfile", Start: hcl.Pos{Line: 3, Column: 2, Byte: 20}, End: hcl.Pos{Line: 3, Column: 5, Byte: 23}}
	diags := hcl.Diagnostics{
		{Severity: hcl.DiagWarning, Summary: "Something odd", Detail: "Look at it.", Subject: &rng},
		{Severity: hcl.DiagError, Summary: "No position", Detail: "Nothing to point at."},
	}
	var buf bytes.Buffer
	if err := WriteDiagnostics(&buf, diags, nil, false); err != nil {
		t.Fatal(err)
	}
	want := "Warning: Something odd\n\n  on Unikfile:3:2:\n  (source code not available)\n\nLook at it.\n\n" +
		"Error: No position\n\nNothing to point at.\n\n"
	if buf.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestDiagnosticsJSON(t *testing.T) {
	path := project(t, renderUnikfile)
	_, _, diags := Load(path, Options{Catalog: catalog, Vars: map[string]string{"nope": "1"}, Environ: noEnv})
	got := DiagnosticsJSON(diags)
	if len(got) != 2 {
		t.Fatalf("want two diagnostics; got %d", len(got))
	}
	if got[0].Range != nil || !strings.Contains(got[0].Summary, `"nope"`) {
		t.Errorf("first diagnostic = %+v; want the --var one, without a range", got[0])
	}
	want := DiagnosticJSON{
		Severity: "error",
		Summary:  "Invalid memory size",
		Detail:   `"12MiB" is too small: an app needs at least 64MiB.`,
		Range: &RangeJSON{
			Filename: path,
			Start:    PosJSON{Line: 4, Column: 14, Byte: 63},
			End:      PosJSON{Line: 4, Column: 21, Byte: 70},
		},
		Snippet: `  memory   = "12MiB"`,
	}
	if g, w := dump(got[1]), dump(want); g != w {
		t.Errorf("got %s\nwant %s", g, w)
	}
	if s := renderUnikfile[want.Range.Start.Byte:want.Range.End.Byte]; s != `"12MiB"` {
		t.Errorf("byte offsets cover %q", s)
	}

	b, err := json.Marshal(DiagnosticsJSON(nil))
	if err != nil || string(b) != "[]" {
		t.Errorf("no diagnostics encode as %s, %v; want []", b, err)
	}
	b, _ = json.Marshal(got[1])
	for _, key := range []string{`"severity"`, `"summary"`, `"detail"`, `"range"`, `"filename"`, `"start"`, `"line"`, `"column"`, `"byte"`, `"snippet"`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("JSON %s lacks %s", b, key)
		}
	}
}

// A Unikfile cannot drive the terminal through a diagnostic: control
// characters of the source line are shown as their pictures, and the
// carets still point at the range.
func TestWriteDiagnosticsEscapesControlCharacters(t *testing.T) {
	path := project(t, "app \"a\" {\n  language = \"\x1b]0;owned\x07\x1b[2J\"\n}\n")
	_, sources, diags := Load(path, Options{Catalog: catalog, Environ: noEnv})
	var b strings.Builder
	if err := WriteDiagnostics(&b, diags, sources, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Fatalf("raw control characters reach the terminal:\n%q", out)
	}
	if !strings.Contains(out, `language = "␛]0;owned␇␛[2J"`) {
		t.Errorf("the source line is not shown with visible controls:\n%s", out)
	}
}

// A source line of 200 KB is shown as a window around the error.
func TestWriteDiagnosticsCutsLongLines(t *testing.T) {
	path := project(t, "app \"a\" {\n  language = \"go\"\n  args = ["+strings.Repeat(`"x", `, 40000)+"1, {}]\n}\n")
	_, sources, diags := Load(path, Options{Catalog: catalog, Environ: noEnv})
	if !diags.HasErrors() {
		t.Fatal("no error")
	}
	var b strings.Builder
	_ = WriteDiagnostics(&b, diags, sources, false)
	for _, l := range strings.Split(b.String(), "\n") {
		if len(l) > 400 {
			t.Fatalf("a %d-byte line was printed", len(l))
		}
	}
	if !strings.Contains(b.String(), "…") {
		t.Errorf("no cut is shown:\n%s", b.String())
	}
}
