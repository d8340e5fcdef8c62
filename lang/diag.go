package lang

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// errorAt returns an error diagnostic about the source at rng.
func errorAt(rng hcl.Range, summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   detail,
		Subject:  rng.Ptr(),
	}
}

// posString renders the start of rng as FILE:LINE:COL, the form editors
// and terminals turn into links.
func posString(rng hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", rng.Filename, rng.Start.Line, rng.Start.Column)
}

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
)

// WriteDiagnostics renders diags for a human, the way Terraform does:
//
//	Error: Unsupported argument
//
//	  on Unikfile:4:3, in app "api":
//	     4:   porst = [8080]
//	          ^^^^^
//
//	An argument named "porst" is not expected here. Did you mean "ports"?
//
// files supplies the source lines (pass the Sources from Load); a
// diagnostic whose file is missing is rendered without them. color adds
// ANSI colors for terminals.
func WriteDiagnostics(w io.Writer, diags hcl.Diagnostics, files map[string]*hcl.File, color bool) error {
	for _, d := range diags {
		if err := writeDiagnostic(w, d, files, color); err != nil {
			return err
		}
	}
	return nil
}

func writeDiagnostic(w io.Writer, d *hcl.Diagnostic, files map[string]*hcl.File, color bool) error {
	var b strings.Builder
	sev, code := "Error", ansiRed
	if d.Severity == hcl.DiagWarning {
		sev, code = "Warning", ansiYellow
	}
	if color {
		fmt.Fprintf(&b, "%s%s%s%s: %s%s%s\n\n", ansiBold, code, sev, ansiReset, ansiBold, d.Summary, ansiReset)
	} else {
		fmt.Fprintf(&b, "%s: %s\n\n", sev, d.Summary)
	}
	if d.Subject != nil {
		file := files[d.Subject.Filename]
		fmt.Fprintf(&b, "  on %s", posString(*d.Subject))
		if c := blockContext(file, d.Subject.Start.Byte); c != "" {
			fmt.Fprintf(&b, ", in %s", c)
		}
		b.WriteString(":\n")
		if file == nil || file.Bytes == nil {
			b.WriteString("  (source code not available)\n")
		}
		for _, l := range snippet(file, *d.Subject, d.Context) {
			fmt.Fprintf(&b, "%4d: %s\n", l.number, l.text)
			if l.hlStart < 0 {
				continue
			}
			b.WriteString("      ")
			for _, r := range l.text[:l.hlStart] {
				if r == '\t' {
					b.WriteByte('\t')
				} else {
					b.WriteByte(' ')
				}
			}
			carets := strings.Repeat("^", max(1, utf8.RuneCountInString(l.text[l.hlStart:l.hlEnd])))
			if color {
				carets = ansiBold + code + carets + ansiReset
			}
			b.WriteString(carets + "\n")
		}
		b.WriteString("\n")
	}
	if d.Detail != "" {
		b.WriteString(d.Detail + "\n\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// parseForNav parses src for the navigation data that names the block
// around a position; the file keeps src even if it does not parse.
func parseForNav(filename string, src []byte) *hcl.File {
	f, _ := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if f == nil {
		return &hcl.File{Body: hcl.EmptyBody(), Bytes: src}
	}
	return f
}

// blockContext names the top-level block holding offset, e.g. `app "api"`.
func blockContext(file *hcl.File, offset int) string {
	if file == nil {
		return ""
	}
	if nav, ok := file.Nav.(interface{ ContextString(int) string }); ok {
		return nav.ContextString(offset)
	}
	return ""
}

// srcLine is one line of source shown with a diagnostic. hlStart and hlEnd
// are the byte offsets in text of the part to underline; hlStart is -1 if
// the line is context only.
type srcLine struct {
	number         int
	text           string
	hlStart, hlEnd int
}

// snippet returns the lines of file that the subject (and the optional
// context range around it) cover.
func snippet(file *hcl.File, subject hcl.Range, context *hcl.Range) []srcLine {
	if file == nil || file.Bytes == nil {
		return nil
	}
	show, hl := subject, subject
	if context != nil {
		show = hcl.RangeOver(show, *context)
	}
	// An empty range cannot be underlined: widen it to one character,
	// which may sit just past the end of a line.
	if show.Empty() {
		show.End.Byte++
		show.End.Column++
	}
	if hl.Empty() {
		hl.End.Byte++
		hl.End.Column++
	}
	var lines []srcLine
	sc := hcl.NewRangeScanner(file.Bytes, subject.Filename, bufio.ScanLines)
	for sc.Scan() {
		lr := sc.Range()
		if !lr.Overlaps(show) && !(show.Start.Byte == lr.End.Byte && lr.Start.Line == show.Start.Line) {
			continue
		}
		l := srcLine{number: lr.Start.Line, text: string(sc.Bytes()), hlStart: -1}
		start, end := max(hl.Start.Byte, lr.Start.Byte), min(hl.End.Byte, lr.End.Byte)
		switch {
		case start < end:
			l.hlStart, l.hlEnd = start-lr.Start.Byte, end-lr.Start.Byte
		case hl.Start.Byte == lr.End.Byte && hl.Start.Line == lr.Start.Line:
			// The subject is the end of the line (a missing token).
			l.hlStart, l.hlEnd = len(l.text), len(l.text)
		}
		l.hlStart, l.hlEnd = min(l.hlStart, len(l.text)), min(l.hlEnd, len(l.text))
		lines = append(lines, l)
	}
	return lines
}
