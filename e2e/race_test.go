//go:build e2e && race

package e2e

// raceEnabled reports whether the tests run with the race detector; the broker is then built
// with it too.
const raceEnabled = true
