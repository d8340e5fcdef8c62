// Package graph runs a DAG of stage nodes: each node runs once, after the
// nodes it depends on, with bounded parallelism and cancellation through
// context.Context, and every step is reported as an Event that the CLI
// renders as progress.
//
// It is generic: it must not know what compile, package or deploy mean.
// Which nodes exist and how they are cached is decided by package pipeline.
package graph
