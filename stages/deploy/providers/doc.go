// Package providers is the table of deploy providers: one line per provider,
// each implemented in its own package under stages/deploy.
//
// It must hold nothing but the table; the CLI calls Registry and passes the
// result to the reconciler in stages/deploy.
package providers
