package throttle

import (
	"sync"
	"time"
)

// simClock is a simulated clock: time moves only when the test says, and
// After fires when it has moved far enough.
type simClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []simTimer
}

type simTimer struct {
	at time.Time
	ch chan time.Time
}

func newSimClock() *simClock {
	return &simClock{now: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *simClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, simTimer{at: c.now.Add(d), ch: ch})
	return ch
}

// Advance moves time by d and fires the timers that came due.
func (c *simClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.now) {
			kept = append(kept, t)
			continue
		}
		t.ch <- c.now
	}
	c.timers = kept
}
