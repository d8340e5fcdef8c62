package lang_test

import (
	. "github.com/unikfile/unikfile/lang"
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{
			name: "indent and align",
			src: `app "api" {
language="go"
    ports = [8080,9090]
  memory="256MiB"
linux {
cmdline="quiet"
}
}
target "dev" {
provider="qemu"
apps=[app.api]
}
`,
			want: `app "api" {
  language = "go"
  ports    = [8080, 9090]
  memory   = "256MiB"
  linux {
    cmdline = "quiet"
  }
}
target "dev" {
  provider = "qemu"
  apps     = [app.api]
}
`,
		},
		{
			name: "already formatted",
			src:  string(Scaffold("hello", "example.com/hello")),
			want: string(Scaffold("hello", "example.com/hello")),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, diags := Format([]byte(tt.src), "Unikfile")
			if diags.HasErrors() {
				t.Fatalf("Format: %s", diags.Error())
			}
			if string(got) != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
			again, _ := Format(got, "Unikfile")
			if string(again) != string(got) {
				t.Errorf("Format is not idempotent:\n%s\nthen:\n%s", got, again)
			}
		})
	}
}

func TestFormatSyntaxError(t *testing.T) {
	src := []byte("app \"a\" {\n  language = \"go\"\n")
	got, diags := Format(src, "Unikfile")
	if got != nil || !diags.HasErrors() {
		t.Fatalf("Format = %q, %v; want no output and an error", got, diags)
	}
	d := diags[0]
	if d.Subject == nil || d.Subject.Filename != "Unikfile" || d.Subject.Start.Line != 1 ||
		!strings.Contains(d.Summary, "Unclosed configuration block") {
		t.Errorf("diagnostic = %s at %v", d.Summary, d.Subject)
	}
	if j := DiagnosticsJSON(diags); j[0].Snippet != `app "a" {` {
		t.Errorf("JSON snippet = %q", j[0].Snippet)
	}
	var buf strings.Builder
	if err := WriteDiagnostics(&buf, diags, SourcesOf("Unikfile", src), false); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "on Unikfile:1:9, in app \"a\":\n   1: app \"a\" {\n") {
		t.Errorf("rendered:\n%s", out)
	}
}
