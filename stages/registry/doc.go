// Package registry holds the tables of unikfile's extension points, one
// line per entry: the bases (bases.go), the deploy providers
// (providers.go), and from them and the compile languages, disk formats
// and executors, the lang.Catalog that tells the Unikfile's parser what
// each enumerated attribute accepts. A base, provider, language or format
// is accepted exactly when it is in its table.
//
// It must hold nothing but the tables and the Catalog built from them;
// each entry is implemented in its own package (stages/package/linux,
// stages/deploy/qemu, ...). The CLI and the watch loop pass Catalog to
// lang and Providers to stages/deploy; pipeline looks bases up here.
package registry
