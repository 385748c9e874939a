package skycore

import (
	"testing"
	"time"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

func TestPublishRetrying(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		last RetryNote
		code apperr.Code
		at   time.Duration // after t0
		want bool
	}{
		{"the first failure", RetryNote{}, "E503", 0, true},
		{"same code within the hour", RetryNote{"E503", t0}, "E503", 59 * time.Minute, false},
		{"same code after an hour", RetryNote{"E503", t0}, "E503", time.Hour, true},
		{"new code at once", RetryNote{"E503", t0}, "TIMEOUT", 5 * time.Second, false},
		{"new code after 30 minutes", RetryNote{"E503", t0}, "TIMEOUT", 30 * time.Minute, true},
		{"clock gone backwards", RetryNote{"E503", t0}, "E503", -time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PublishRetrying(tt.last, tt.code, t0.Add(tt.at)); got != tt.want {
				t.Errorf("PublishRetrying = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRetryingBounded: a request failing for the whole 24-hour retry
// window on the default back-off (5 s doubled up to 15 min) gets at most
// RetryingBound events: 25 with one code, at most 49 when the code changes
// at every attempt. Fast clock: the attempts are computed, not waited for.
func TestRetryingBounded(t *testing.T) {
	const window = 24 * time.Hour
	attempts := func(base, maxB time.Duration) []time.Duration {
		var out []time.Duration
		at, b := time.Duration(0), base
		for at < window {
			out = append(out, at)
			at += b
			b = min(2*b, maxB)
		}
		return out
	}
	codes := map[string]func(i int) apperr.Code{
		"one code":          func(int) apperr.Code { return "E503" },
		"flapping codes":    func(i int) apperr.Code { return []apperr.Code{"E503", "TIMEOUT", "HTTP_502"}[i%3] },
		"code changes once": func(i int) apperr.Code { return map[bool]apperr.Code{true: "E503", false: "E618"}[i < 40] },
	}
	for _, sched := range []struct {
		name      string
		base, max time.Duration
	}{{"default back-off", 5 * time.Second, 15 * time.Minute}, {"1-second back-off", time.Second, time.Second}} {
		for name, code := range codes {
			t.Run(sched.name+"/"+name, func(t *testing.T) {
				t0 := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
				var last RetryNote
				events := 0
				as := attempts(sched.base, sched.max)
				for i, at := range as {
					now := t0.Add(at)
					if PublishRetrying(last, code(i), now) {
						events++
						last = RetryNote{code(i), now}
					}
				}
				bound := RetryingBound(window)
				if name == "one code" {
					bound = 1 + int(window/RetryingEvery)
				}
				if events > bound || events < 2 {
					t.Errorf("%d attempts gave %d retrying events, want 2..%d", len(as), events, bound)
				}
				t.Logf("%d attempts, %d retrying events (bound %d)", len(as), events, bound)
			})
		}
	}
	if got := RetryingBound(window); got != 49 {
		t.Errorf("RetryingBound(24h) = %d, want 49 (docs/events.md)", got)
	}
}
