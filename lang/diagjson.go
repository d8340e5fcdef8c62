package lang

import (
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// DiagnosticJSON is one diagnostic as `--json` prints it; it carries the
// same information as the text WriteDiagnostics renders.
type DiagnosticJSON struct {
	Severity string     `json:"severity"` // "error" or "warning"
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail,omitempty"`
	Range    *RangeJSON `json:"range,omitempty"` // absent if no source position applies
	// Snippet is the source line (or lines) the range covers.
	Snippet string `json:"snippet,omitempty"`
}

// RangeJSON is a span of a source file; End is exclusive.
type RangeJSON struct {
	Filename string  `json:"filename"`
	Start    PosJSON `json:"start"`
	End      PosJSON `json:"end"`
}

// PosJSON is a position in a source file: Line and Column count from 1,
// Byte from 0.
type PosJSON struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

// DiagnosticsJSON converts diags for JSON output. Snippets come from the
// diagnostics themselves: Load and Format attach the source lines to every
// diagnostic they return, so no Sources are needed here. The result is
// never nil, so it encodes as [] when there is nothing to report.
func DiagnosticsJSON(diags hcl.Diagnostics) []DiagnosticJSON {
	out := make([]DiagnosticJSON, 0, len(diags))
	for _, d := range diags {
		j := DiagnosticJSON{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			j.Severity = "warning"
		}
		if s := d.Subject; s != nil {
			j.Range = &RangeJSON{
				Filename: s.Filename,
				Start:    PosJSON{s.Start.Line, s.Start.Column, s.Start.Byte},
				End:      PosJSON{s.End.Line, s.End.Column, s.End.Byte},
			}
			if e, ok := hcl.DiagnosticExtra[*snippetExtra](d); ok {
				j.Snippet = e.text
			}
		}
		out = append(out, j)
	}
	return out
}

// SourcesOf returns Sources holding one file, for rendering diagnostics
// about source that did not come from Load (Format's, for instance).
func SourcesOf(filename string, src []byte) Sources {
	return Sources{filename: parseForNav(filename, src)}
}

// snippetExtra carries a diagnostic's source lines in its Extra field,
// wrapping whatever Extra value HCL put there.
type snippetExtra struct {
	text    string
	wrapped any
}

// UnwrapDiagnosticExtra implements hcl.DiagnosticExtraUnwrapper.
func (e *snippetExtra) UnwrapDiagnosticExtra() any { return e.wrapped }

// attachSnippets records in each diagnostic the source lines its subject
// covers, so the diagnostics can be rendered as JSON on their own.
func attachSnippets(diags hcl.Diagnostics, files Sources) {
	sn := newSnippets(files)
	for _, d := range diags {
		if _, done := hcl.DiagnosticExtra[*snippetExtra](d); done || d.Subject == nil {
			continue
		}
		var lines []string
		for _, l := range sn.of(*d.Subject, nil) {
			lines = append(lines, l.text)
		}
		if len(lines) > 0 {
			d.Extra = &snippetExtra{text: strings.Join(lines, "\n"), wrapped: d.Extra}
		}
	}
}
