package skycore

import (
	"fmt"
	"sync"
	"time"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// Who is at fault decides the class of two answers (docs/codes.md, "Who is
// at fault"). The code table (codes.go) gives the class when nothing is
// known of the request: E100 config, so that an unrefined E100 is retried,
// never thrown away. Blame narrows it with what the request shows:
//
//   - E100 (invalid request) is this request's fault, rejected, unless
//     E100 answers came for E100BurstIDs distinct ids within
//     E100BurstWindow in this instance: from the E100BurstIDs-th on, the
//     cause is the deployment or an encoding defect, so further ones are
//     config (retrying, alarmed), and one defect cannot reject all traffic.
//   - E111 (invalid sender) is the request's fault, rejected, when it chose
//     its FROM; when FROM was SKYCORE_DEFAULT_FROM the deployment is wrong:
//     config.
//
// Every other code keeps the table's class (E112 stays config).

// The E100 burst's defaults (docs/codes.md).
const (
	E100BurstIDs    = 5
	E100BurstWindow = 10 * time.Minute
	// e100Tracked bounds the ids remembered: past E100BurstIDs the answer
	// is config whatever the count, so a flood costs no more memory.
	e100Tracked = 256
)

// Blame refines the class of Skycore's error answers for one function
// instance. Safe for concurrent use.
type Blame struct {
	defaultFrom string
	burst       *E100Burst
}

// NewBlame returns a Blame for a sender whose SKYCORE_DEFAULT_FROM is
// defaultFrom, with the default E100 burst rule; now is its clock (nil:
// time.Now).
func NewBlame(defaultFrom string, now func() time.Time) *Blame {
	return &Blame{defaultFrom: defaultFrom, burst: NewE100Burst(E100BurstIDs, E100BurstWindow, now)}
}

// Class is the class of Skycore's answer e to the request id, sent with
// FROM from (after SKYCORE_DEFAULT_FROM was applied), and why, for the log
// ("" when the table's class stands). Call it once per answer: an E100
// counts toward the burst.
func (b *Blame) Class(e *apperr.Error, id, from string) (apperr.Class, string) {
	switch e.Code {
	case "E100":
		class, n := b.burst.Observe(id)
		if class == apperr.Config {
			return class, fmt.Sprintf("E100 for %d distinct requests within %s: a deployment or encoding defect, not this request", n, b.burst.window)
		}
		return class, "E100: this request is invalid"
	case "E111":
		return E111Class(from, b.defaultFrom)
	}
	return e.Class, ""
}

// E111Class classifies E111 (Invalid Sender): rejected when the request
// chose its FROM; config when FROM is SKYCORE_DEFAULT_FROM (defaultFrom),
// since then every request relying on the default would fail alike.
func E111Class(from, defaultFrom string) (apperr.Class, string) {
	if defaultFrom != "" && from == defaultFrom {
		return apperr.Config, "E111 for SKYCORE_DEFAULT_FROM: the deployment's sender is not valid for this account"
	}
	return apperr.Permanent, "E111: the request's from is not valid for this account"
}

// E100Burst counts the distinct ids answered E100 in a sliding window.
type E100Burst struct {
	mu        sync.Mutex
	now       func() time.Time
	threshold int
	window    time.Duration
	seen      map[string]time.Time // id → its latest E100 answer
}

// NewE100Burst: from the threshold-th distinct id answered E100 within
// window, Observe says config. now is the clock (nil: time.Now).
func NewE100Burst(threshold int, window time.Duration, now func() time.Time) *E100Burst {
	if now == nil {
		now = time.Now
	}
	return &E100Burst{now: now, threshold: threshold, window: window, seen: make(map[string]time.Time)}
}

// Observe records an E100 answer to id and returns its class (Permanent
// below the threshold, Config from it on) and the distinct ids answered
// E100 within the window, this one included. The same id answered again
// counts once.
func (b *E100Burst) Observe(id string) (apperr.Class, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	for k, at := range b.seen {
		if now.Sub(at) >= b.window {
			delete(b.seen, k)
		}
	}
	if _, ok := b.seen[id]; ok || len(b.seen) < max(e100Tracked, b.threshold) {
		b.seen[id] = now
	}
	n := len(b.seen)
	if _, ok := b.seen[id]; !ok {
		n++ // not remembered (the map is full), but counted
	}
	if n >= b.threshold {
		return apperr.Config, n
	}
	return apperr.Permanent, n
}
