// Package address parses the addresses the CLI takes (services/api:dev,
// ./..., ./...:prod, services/..., or a plain name such as dev) and
// resolves them against a loaded lang.Workspace: which Unikfiles to load,
// which apps to build, which targets to bring up, which project
// directories to list or stop.
//
// It must not load, build or run anything itself: the CLI loads the files
// it names (lang.LoadWorkspace) and hands the selection to pipeline.
package address
