package schedule_test

import (
	"testing"
	"time"

	"github.com/mmsgate/mmsgate/pkg/schedule"
	"github.com/mmsgate/mmsgate/pkg/store"
)

func TestRetryDelay(t *testing.T) {
	now := time.Date(2026, 12, 24, 9, 0, 0, 0, time.UTC)
	lead := schedule.LastRetryLead
	for _, tc := range []struct {
		name      string
		expiresAt time.Time
		backoff   time.Duration
		wait      time.Duration
		atExpiry  bool
	}{
		{"no expiresAt", time.Time{}, 15 * time.Minute, 15 * time.Minute, false},
		{"back-off well inside", now.Add(time.Hour), 5 * time.Minute, 5 * time.Minute, false},
		{"back-off ends exactly lead before", now.Add(10*time.Minute + lead), 10 * time.Minute, 10 * time.Minute, false},
		{"back-off would cross it: last retry lead before", now.Add(3 * time.Minute), 15 * time.Minute, 3*time.Minute - lead, false},
		{"back-off would end after it", now.Add(time.Minute), 2 * time.Minute, time.Minute - lead, false},
		{"no second left for a retry: expire at it", now.Add(lead + 500*time.Millisecond), time.Minute, lead + 500*time.Millisecond, true},
		{"just inside the lead", now.Add(3 * time.Second), 5 * time.Second, 3 * time.Second, true},
		{"exactly now", now, time.Second, 0, true},
		{"already past", now.Add(-time.Hour), time.Second, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wait, atExpiry := schedule.RetryDelay(now, tc.expiresAt, tc.backoff, lead)
			if wait != tc.wait || atExpiry != tc.atExpiry {
				t.Fatalf("RetryDelay = %v, %v; want %v, %v", wait, atExpiry, tc.wait, tc.atExpiry)
			}
			if !tc.expiresAt.IsZero() && now.Add(wait).After(tc.expiresAt) && wait != 0 {
				t.Errorf("waits past expiresAt")
			}
			// SQS rounds the wait up to whole seconds: a retry still starts
			// before expiresAt.
			if !atExpiry && !tc.expiresAt.IsZero() {
				visible := now.Add((wait + time.Second - 1) / time.Second * time.Second)
				if !schedule.CallAllowed(visible, tc.expiresAt) {
					t.Errorf("the retry, visible at %v, may not call (expiresAt %v)", visible, tc.expiresAt)
				}
			}
		})
	}
}

// TestRetryDelayConverges: a request failing at every attempt, backed off
// with RetryDelay, never calls at or after expiresAt and ends at it, not
// at the next back-off.
func TestRetryDelayConverges(t *testing.T) {
	start := time.Date(2026, 12, 24, 9, 0, 0, 0, time.UTC)
	for _, window := range []time.Duration{0, time.Second, 7 * time.Second, time.Minute, 37 * time.Minute, 6 * time.Hour} {
		expiresAt := start.Add(window)
		now, backoff, calls := start, 5*time.Second, 0
		for {
			if !schedule.CallAllowed(now, expiresAt) {
				break
			}
			calls++
			wait, atExpiry := schedule.RetryDelay(now, expiresAt, backoff, schedule.LastRetryLead)
			now = now.Add((wait + time.Second - 1) / time.Second * time.Second)
			backoff = min(2*backoff, 15*time.Minute)
			if atExpiry {
				break
			}
			if calls > 1000 {
				t.Fatalf("window %v: no end", window)
			}
		}
		if now.Before(expiresAt) || now.After(expiresAt.Add(time.Second)) {
			t.Errorf("window %v: ended at %v, want at expiresAt %v", window, now, expiresAt)
		}
	}
}

func TestCallAllowed(t *testing.T) {
	at := time.Date(2026, 12, 24, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		now  time.Time
		want bool
	}{{at.Add(-time.Millisecond), true}, {at, false}, {at.Add(time.Hour), false}} {
		if got := schedule.CallAllowed(tc.now, at); got != tc.want {
			t.Errorf("CallAllowed(%v) = %v", tc.now, got)
		}
	}
	if !schedule.CallAllowed(at, time.Time{}) {
		t.Error("no expiresAt refuses a call")
	}
}

func TestExpiredOutcome(t *testing.T) {
	at := time.Date(2026, 12, 24, 12, 0, 0, 0, time.FixedZone("EST", -5*3600))
	o := schedule.ExpiredOutcome(at, store.Outcome{Attempt: 2, Code: "E503", To: "1555"})
	if o.Code != "EXPIRES_AT" || o.Attempt != 2 || o.To != "1555" ||
		o.Error != "expiresAt 2026-12-24T17:00:00Z passed before Skycore accepted the request" {
		t.Errorf("outcome = %+v", o)
	}
}
