package lang

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

// Format returns src in the canonical Unikfile layout (hclwrite's, the
// same as terraform fmt): indentation, aligned equals signs, spacing.
// It refuses source with syntax errors rather than guess, returning
// diagnostics whose ranges carry filename; render them with
// WriteDiagnostics(w, diags, SourcesOf(filename, src), color). Format is
// idempotent, so `fmt -check` is bytes.Equal(src, formatted).
func Format(src []byte, filename string) ([]byte, hcl.Diagnostics) {
	if diags := checkNesting(src, filename); diags.HasErrors() {
		attachSnippets(diags, Sources{filename: &hcl.File{Body: hcl.EmptyBody(), Bytes: src}})
		return nil, diags
	}
	if _, diags := hclwrite.ParseConfig(src, filename, hcl.InitialPos); diags.HasErrors() {
		attachSnippets(diags, SourcesOf(filename, src))
		return nil, diags
	}
	return hclwrite.Format(src), nil
}
