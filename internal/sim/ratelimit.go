package sim

import (
	"strings"
	"sync"
	"time"
)

// throughput is the account-wide limit Skycore sets on an API action
// (E113 "Set throughput exceeded for this API action") and the interval it
// may impose between one key's calls (E106 "You can call API every X
// seconds"). The vendor page names both codes and no numbers; the notes
// say the limits are per account and shown on its API Settings page.
//
// RateLimit N admits at most N calls in any one-second window (a sliding
// window over the admission times, all callers together): the literal
// reading of "N calls per second", and the strictest, so that a client
// that stays under it here stays under a token bucket of the same rate
// too. A refused call is not admitted: it does not use up the window.
type throughput struct {
	mu       sync.Mutex
	limit    int           // calls per second; 0 is off
	interval time.Duration // E106 between one key's calls; 0 is off
	admitted []time.Time   // admission times within the last second, oldest first
	lastCall map[string]time.Time
	stats    Throughput
}

// Throughput is what GET /_sim/throughput reports: the limit in force and
// how many calls it refused since the start (or the last reset).
type Throughput struct {
	Limit    int     `json:"limit"`              // calls per second, 0 when off
	Interval string  `json:"interval,omitempty"` // E106's interval per key
	Calls    int     `json:"calls"`              // calls that reached the limiter
	Admitted int     `json:"admitted"`
	E113     int     `json:"e113"`
	E106     int     `json:"e106"`
	Share    float64 `json:"e113Share"` // E113 / Calls
}

func newThroughput(limit float64, interval time.Duration) *throughput {
	return &throughput{limit: int(limit), interval: interval, lastCall: map[string]time.Time{}}
}

// admit decides one call arriving at now with the given API key: "" (go
// on), "E106" or "E113".
func (t *throughput) admit(now time.Time, key string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.limit <= 0 && t.interval <= 0 {
		return ""
	}
	t.stats.Calls++
	if t.interval > 0 {
		key = strings.TrimSpace(key)
		if last, ok := t.lastCall[key]; ok && now.Sub(last) < t.interval {
			t.stats.E106++
			return "E106"
		}
	}
	if t.limit > 0 {
		cut := now.Add(-time.Second)
		i := 0
		for i < len(t.admitted) && !t.admitted[i].After(cut) {
			i++
		}
		t.admitted = t.admitted[i:]
		if len(t.admitted) >= t.limit {
			t.stats.E113++
			return "E113"
		}
		t.admitted = append(t.admitted, now)
	}
	if t.interval > 0 {
		t.lastCall[key] = now
	}
	t.stats.Admitted++
	return ""
}

func (t *throughput) report() Throughput {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.stats
	r.Limit = t.limit
	if t.interval > 0 {
		r.Interval = t.interval.String()
	}
	if r.Calls > 0 {
		r.Share = float64(r.E113) / float64(r.Calls)
	}
	return r
}

func (t *throughput) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.admitted, t.lastCall, t.stats = nil, map[string]time.Time{}, Throughput{}
}

// Throughput reports the account-wide limit and what it refused.
func (s *Server) Throughput() Throughput { return s.limit.report() }
