// Package lang reads Unikfiles: HCL syntax, variables, locals, functions,
// references between blocks, and validation. It returns a typed Project or
// hcl.Diagnostics whose ranges point at file:line:col, and it formats
// Unikfiles (unikfile fmt).
//
// The entry points:
//
//   - Load parses and evaluates one Unikfile into a Project, and returns
//     the Sources it read so that WriteDiagnostics (text, Terraform style)
//     and DiagnosticsJSON (for --json) can show the offending lines. Both
//     renderings come from the same hcl.Diagnostics.
//   - FindFile locates the Unikfile in a directory; Discover finds every
//     Unikfile below a folder (skipping VCS and ignored folders).
//   - LoadWorkspace loads several Unikfiles, and the ones their targets
//     reference ("DIR:APP"), reporting every file's diagnostics and
//     checking references between files (workspace.go).
//   - Format canonicalizes a Unikfile's layout (unikfile fmt).
//   - Scaffold writes a starter Unikfile (unikfile init).
//
// One file holds one step: load.go drives the phases; variables.go,
// locals.go, app.go, target.go and build.go decode the blocks; eval.go is
// the evaluation scope and reference checks; decode.go the typed attribute
// getters; diag.go and diagjson.go render diagnostics.
//
// It must not build, package or run anything, nor touch anything but the
// Unikfile it is given, apart from checking that each app's source
// directory exists inside the project: every later stage works from the
// Project it returns. It has no function that reads the host (no env(),
// file() or timestamp()), so a Project depends only on the Unikfile, its
// variables' values and the source directories' locations.
//
// cmd/unikfile calls it; graph/ and the stages consume the Project.
package lang
