//go:build race

package proxy

// The race detector slows byte copying about tenfold; large-body tests
// shrink under it and run at full size in the plain pass of make test.
const raceEnabled = true
