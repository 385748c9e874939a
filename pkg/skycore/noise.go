package skycore

import (
	"time"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// Bounded noise (docs/events.md, "retrying"): a request that keeps failing
// for its whole retry window gets a retrying event for its first failure,
// then only when the code changes (at most one per RetryingChangeGap) or,
// with the same code, once per RetryingEvery. Over a window W that is at
// most 1 + W/RetryingChangeGap events (49 in 24 hours) and, with one code,
// 1 + W/RetryingEvery (25 in 24 hours), whatever the back-off.
const (
	RetryingEvery     = time.Hour
	RetryingChangeGap = 30 * time.Minute
)

// RetryNote is what the sender keeps, per id, of the last retrying event
// it published: its code and when. The zero value means none yet.
type RetryNote struct {
	Code apperr.Code
	At   time.Time
}

// PublishRetrying reports whether a failure with code at now gets a
// retrying event, given the last one published for the id. When it says
// true the caller publishes and records RetryNote{code, now}; when false
// it only logs and counts.
func PublishRetrying(last RetryNote, code apperr.Code, now time.Time) bool {
	if last.At.IsZero() {
		return true
	}
	since := now.Sub(last.At)
	if code != last.Code {
		return since >= RetryingChangeGap
	}
	return since >= RetryingEvery
}

// RetryingBound is the most retrying events one id can get in a retry
// window of w (documented in docs/events.md; tests hold the rule to it).
func RetryingBound(w time.Duration) int { return 1 + int(w/RetryingChangeGap) }
