//go:build race

package buildkit

// raceRun is true under the race detector: the tests that only run
// toolchains in builder images skip, the concurrency of this package being
// exercised by the others (TestBuildKitParallelSolves), and the full run
// compiles every language.
const raceRun = true
