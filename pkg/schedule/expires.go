package schedule

import (
	"time"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// LastRetryLead is how long before expiresAt the last retry is timed: its
// message's visibility is rounded up to whole seconds and it must still be
// claimed, so a retry planned closer to expiresAt could start after it.
const LastRetryLead = 5 * time.Second

// CallAllowed reports whether a Skycore call may start at now: never at or
// after expiresAt (zero: no limit). The sender asks it after each claim,
// right before the call; false ends the request expired (ExpiredOutcome).
func CallAllowed(now, expiresAt time.Time) bool {
	return expiresAt.IsZero() || now.Before(expiresAt)
}

// RetryDelay bounds the back-off of a request that failed at now: backoff
// itself when the next attempt still starts at least lead before
// expiresAt; otherwise the last retry, timed lead before expiresAt, when
// that is at least a second away; otherwise a wait until expiresAt, where
// the request expires with no further call (atExpiry). A zero expiresAt
// leaves backoff as it is. It never waits past expiresAt.
func RetryDelay(now, expiresAt time.Time, backoff, lead time.Duration) (wait time.Duration, atExpiry bool) {
	if expiresAt.IsZero() {
		return backoff, false
	}
	left := expiresAt.Sub(now)
	switch {
	case left <= 0:
		return 0, true
	case backoff <= left-lead:
		return backoff, false
	case left-lead >= time.Second:
		return left - lead, false
	}
	return left, true
}

// ExpiredOutcome is the outcome recorded (Store.Expire) for a request whose
// expiresAt passed before Skycore accepted it, on arrival included. It
// keeps o's fields (to, from, mmsId, the attempt) and sets the code and
// the reason that the expired event and the dead-letter attribute carry.
func ExpiredOutcome(expiresAt time.Time, o store.Outcome) store.Outcome {
	o.Code = string(apperr.CodeExpiresAt) // docs/events.md
	o.Error = "expiresAt " + expiresAt.UTC().Format(time.RFC3339) + " passed before Skycore accepted the request"
	return o
}
