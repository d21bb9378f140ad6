//go:build race

package deploy

// raceEnabled makes the test build the service binaries with -race too, so
// that they reuse the packages the race-enabled test build already compiled.
const raceEnabled = true
