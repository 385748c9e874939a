//go:build race

package mmsgate

// raceEnabled: this test binary was built with -race.
const raceEnabled = true
