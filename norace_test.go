//go:build !race

package mmsgate

const raceEnabled = false
