package lang

import "github.com/hashicorp/hcl/v2"

var buildSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "executor"}},
}

// decodeBuild decodes the project-wide `build` block.
func decodeBuild(b *hcl.Block, s *scope) (Build, hcl.Diagnostics) {
	content, diags := b.Body.Content(buildSchema)
	d := &decoder{s: s, attrs: content.Attributes}
	out := Build{Executor: d.choice("executor", "local", executors)}
	return out, append(diags, d.diags...)
}
