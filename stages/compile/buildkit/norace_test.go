//go:build !race

package buildkit

const raceRun = false
