// Package pipeline turns a loaded Project into the graph of stage nodes
// (compile(app) -> package(app, base, format) -> deploy(target)) and gives
// each node its cache key and its work. Shared work is one node: an app
// used by several targets compiles and packages once. WorkspaceBuildGraph
// and WorkspaceUpGraph do the same over several Unikfiles (a
// lang.Workspace), with node IDs namespaced by each Unikfile's folder when
// more than one is loaded.
//
// It owns the wiring between the stages, not the stages themselves: how a
// language compiles lives in stages/compile, how an image is laid out in
// stages/package, how an instance boots in stages/deploy.
package pipeline
