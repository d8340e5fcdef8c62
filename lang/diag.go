package lang

import (
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
	sn := newSnippets(files)
	for _, d := range diags {
		if err := writeDiagnostic(w, d, sn, color); err != nil {
			return err
		}
	}
	return nil
}

func writeDiagnostic(w io.Writer, d *hcl.Diagnostic, sn *snippets, color bool) error {
	var b strings.Builder
	sev, code := "Error", ansiRed
	if d.Severity == hcl.DiagWarning {
		sev, code = "Warning", ansiYellow
	}
	summary := Visible(d.Summary)
	if color {
		fmt.Fprintf(&b, "%s%s%s%s: %s%s%s\n\n", ansiBold, code, sev, ansiReset, ansiBold, summary, ansiReset)
	} else {
		fmt.Fprintf(&b, "%s: %s\n\n", sev, summary)
	}
	if d.Subject != nil {
		file := sn.files[d.Subject.Filename]
		fmt.Fprintf(&b, "  on %s", posString(*d.Subject))
		if c := blockContext(file, d.Subject.Start.Byte); c != "" {
			fmt.Fprintf(&b, ", in %s", c)
		}
		b.WriteString(":\n")
		if file == nil || file.Bytes == nil {
			b.WriteString("  (source code not available)\n")
		}
		for _, l := range sn.of(*d.Subject, d.Context) {
			l = l.window(maxSnippetLine)
			if l.hlStart >= 0 {
				// Escaping changes widths: place the carets in the escaped text.
				l.hlStart, l.hlEnd = len(Visible(l.text[:l.hlStart])), len(Visible(l.text[:l.hlEnd]))
			}
			l.text = Visible(l.text)
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
		b.WriteString(VisibleLines(d.Detail) + "\n\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Visible returns s with control characters (a terminal's escape
// sequences among them) replaced by their visible pictures (␛ for ESC),
// so that text from a Unikfile or a path cannot drive the terminal when it
// is echoed. Tabs are kept.
func Visible(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t' || !isControl(r):
			b.WriteRune(r)
		case r < 0x20:
			b.WriteRune(0x2400 + r)
		case r == 0x7f:
			b.WriteRune(0x2421)
		default:
			b.WriteRune(utf8.RuneError)
		}
	}
	return b.String()
}

// VisibleLines is Visible for each line of s, keeping its newlines.
func VisibleLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = Visible(l)
	}
	return strings.Join(lines, "\n")
}

func isControl(r rune) bool {
	return r < 0x20 && r != '\t' || r == 0x7f || r >= 0x80 && r < 0xa0
}

// parseForNav parses src for the navigation data that names the block
// around a position; the file keeps src even if it does not parse.
func parseForNav(filename string, src []byte) *hcl.File {
	if checkNesting(src, filename).HasErrors() {
		return &hcl.File{Body: hcl.EmptyBody(), Bytes: src}
	}
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

// maxSnippetLine is the most bytes of one source line a diagnostic shows:
// longer lines are cut around what is underlined.
const maxSnippetLine = 160

// window cuts l to about n bytes around its highlight, marking the cuts
// with "…".
func (l srcLine) window(n int) srcLine {
	if len(l.text) <= n {
		return l
	}
	from := 0
	if l.hlStart > n/3 {
		from = l.hlStart - n/3
	}
	to := min(from+n, len(l.text))
	for from > 0 && !utf8.RuneStart(l.text[from]) {
		from--
	}
	for to < len(l.text) && !utf8.RuneStart(l.text[to]) {
		to++
	}
	text := l.text[from:to]
	shift := from
	if from > 0 {
		text, shift = "…"+text, from-len("…")
	}
	if to < len(l.text) {
		text += "…"
	}
	out := srcLine{number: l.number, text: text, hlStart: -1}
	if l.hlStart >= 0 {
		out.hlStart = min(max(l.hlStart-shift, 0), len(text))
		out.hlEnd = min(max(l.hlEnd-shift, out.hlStart), len(text))
	}
	return out
}

// lineIndex is where each line of a file starts, so that a snippet costs
// the lines it shows, not the file before them.
type lineIndex struct {
	src    []byte
	starts []int
}

func newLineIndex(src []byte) *lineIndex {
	ix := &lineIndex{src: src, starts: []int{0}}
	for i, c := range src {
		if c == '\n' {
			ix.starts = append(ix.starts, i+1)
		}
	}
	return ix
}

// line returns line n (1-based) without its line ending, and its byte
// range.
func (ix *lineIndex) line(n int) (text string, start, end int, ok bool) {
	if n < 1 || n > len(ix.starts) {
		return "", 0, 0, false
	}
	start, end = ix.starts[n-1], len(ix.src)
	if n < len(ix.starts) {
		end = ix.starts[n] - 1
	}
	if end > start && ix.src[end-1] == '\r' {
		end--
	}
	return string(ix.src[start:end]), start, end, true
}

// snippets renders snippets for many diagnostics, indexing each file
// once.
type snippets struct {
	files Sources
	idx   map[string]*lineIndex
}

func newSnippets(files Sources) *snippets {
	return &snippets{files: files, idx: map[string]*lineIndex{}}
}

// of returns the lines of the subject's file that the subject (and the
// optional context range around it) cover.
func (sn *snippets) of(subject hcl.Range, context *hcl.Range) []srcLine {
	file := sn.files[subject.Filename]
	if file == nil || file.Bytes == nil {
		return nil
	}
	ix := sn.idx[subject.Filename]
	if ix == nil {
		ix = newLineIndex(file.Bytes)
		sn.idx[subject.Filename] = ix
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
	for n := max(show.Start.Line, 1); n <= show.End.Line; n++ {
		text, ls, le, ok := ix.line(n)
		if !ok {
			break
		}
		if !overlaps(ls, le, show.Start.Byte, show.End.Byte) && !(show.Start.Byte == le && n == show.Start.Line) {
			continue
		}
		l := srcLine{number: n, text: text, hlStart: -1}
		start, end := max(hl.Start.Byte, ls), min(hl.End.Byte, le)
		switch {
		case start < end:
			l.hlStart, l.hlEnd = start-ls, end-ls
		case hl.Start.Byte == le && hl.Start.Line == n:
			// The subject is the end of the line (a missing token).
			l.hlStart, l.hlEnd = len(l.text), len(l.text)
		}
		l.hlStart, l.hlEnd = min(l.hlStart, len(l.text)), min(l.hlEnd, len(l.text))
		lines = append(lines, l)
	}
	return lines
}

// overlaps is hcl.Range.Overlaps on byte offsets: [as, ae) and [bs, be),
// empty ranges never overlapping.
func overlaps(as, ae, bs, be int) bool {
	if as >= ae || bs >= be {
		return false
	}
	in := func(o, s, e int) bool { return o >= s && o < e }
	return in(bs, as, ae) || in(be, as, ae) || in(as, bs, be) || in(ae, bs, be)
}
