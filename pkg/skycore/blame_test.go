package skycore

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// fakeClock is moved by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)} }

// TestE100Burst: contract default, docs/codes.md: the first four distinct
// ids answered E100 within 10 minutes are rejected, from the 5th on config.
func TestE100Burst(t *testing.T) {
	type step struct {
		after time.Duration // clock advance before the answer
		id    string
		want  apperr.Class
		n     int
	}
	P, C := apperr.Permanent, apperr.Config
	tests := []struct {
		name  string
		steps []step
	}{
		{"one E100 rejects", []step{{0, "a", P, 1}}},
		{"four distinct ids reject", []step{{0, "a", P, 1}, {time.Minute, "b", P, 2}, {time.Minute, "c", P, 3}, {time.Minute, "d", P, 4}}},
		{"the fifth distinct id is config, and later ones", []step{{0, "a", P, 1}, {0, "b", P, 2}, {0, "c", P, 3}, {0, "d", P, 4},
			{time.Second, "e", C, 5}, {time.Second, "f", C, 6}}},
		{"the same id five times is one request's fault", []step{{0, "a", P, 1}, {time.Minute, "a", P, 1}, {time.Minute, "a", P, 1}, {time.Minute, "a", P, 1}, {time.Minute, "a", P, 1}}},
		{"spread over more than 10 minutes: no burst", []step{{0, "a", P, 1}, {3 * time.Minute, "b", P, 2}, {3 * time.Minute, "c", P, 3}, {3 * time.Minute, "d", P, 4},
			{time.Minute, "e", P, 4}}}, // a is exactly 10 minutes old: out
		{"the burst ends 10 minutes after its last answers", []step{{0, "a", P, 1}, {0, "b", P, 2}, {0, "c", P, 3}, {0, "d", P, 4}, {0, "e", C, 5},
			{10 * time.Minute, "f", P, 1}}},
		{"a retried id counts at its latest answer", []step{{0, "a", P, 1}, {0, "b", P, 2}, {0, "c", P, 3}, {0, "d", P, 4}, {0, "e", C, 5},
			{9 * time.Minute, "e", C, 5},   // a-d are 9 minutes old: still in
			{2 * time.Minute, "f", P, 2}}}, // a-d are out; e (2 minutes old) and f remain
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			b := NewE100Burst(E100BurstIDs, E100BurstWindow, clk.now)
			for i, s := range tt.steps {
				clk.add(s.after)
				class, n := b.Observe(s.id)
				if class != s.want || n != s.n {
					t.Errorf("step %d (%s): Observe = %v, %d; want %v, %d", i, s.id, class, n, s.want, s.n)
				}
			}
		})
	}
}

// TestE100BurstFloodBounded: a flood of distinct ids stays config and the
// memory stays bounded.
func TestE100BurstFloodBounded(t *testing.T) {
	clk := newClock()
	b := NewE100Burst(E100BurstIDs, E100BurstWindow, clk.now)
	for i := range 2_000 {
		class, n := b.Observe(fmt.Sprint("id-", i))
		if i >= E100BurstIDs-1 && class != apperr.Config {
			t.Fatalf("id %d: class %v (n %d), want config", i, class, n)
		}
	}
	if len(b.seen) > e100Tracked {
		t.Errorf("remembers %d ids, want at most %d", len(b.seen), e100Tracked)
	}
	clk.add(E100BurstWindow)
	if class, n := b.Observe("after"); class != apperr.Permanent || n != 1 {
		t.Errorf("after the window: %v, %d; want permanent, 1", class, n)
	}
}

// TestE100BurstConcurrent (run with -race): of 20 distinct ids answered
// at once, exactly the first four, whichever they are, are rejected.
func TestE100BurstConcurrent(t *testing.T) {
	b := NewE100Burst(E100BurstIDs, E100BurstWindow, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	configs := 0
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c, _ := b.Observe(fmt.Sprint("c-", i)); c == apperr.Config {
				mu.Lock()
				configs++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if configs != 20-(E100BurstIDs-1) {
		t.Errorf("%d config answers of 20, want %d", configs, 20-(E100BurstIDs-1))
	}
}

// TestBlame: the classes of docs/codes.md, "Who is at fault".
func TestBlame(t *testing.T) {
	e := func(code apperr.Code) *apperr.Error {
		class, _ := Class(code)
		return &apperr.Error{Code: code, Class: class}
	}
	tests := []struct {
		name     string
		err      *apperr.Error
		from     string
		want     apperr.Class
		noReason bool
	}{
		{"E111, the request's own from: rejected", e("E111"), "11111", apperr.Permanent, false},
		{"E111, SKYCORE_DEFAULT_FROM: config", e("E111"), "60856", apperr.Config, false},
		{"E100 alone: rejected", e("E100"), "60856", apperr.Permanent, false},
		{"E112 stays config", e("E112"), "11111", apperr.Config, true},
		{"E110 stays permanent", e("E110"), "11111", apperr.Permanent, true},
		{"E503 stays transient", e("E503"), "60856", apperr.Retry, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBlame("60856", newClock().now)
			class, reason := b.Class(tt.err, "id-1", tt.from)
			if class != tt.want || (reason == "") != tt.noReason {
				t.Errorf("Class = %v, %q; want %v (reason empty: %v)", class, reason, tt.want, tt.noReason)
			}
		})
	}
	t.Run("no default from: E111 is always the request's", func(t *testing.T) {
		if c, _ := NewBlame("", nil).Class(e("E111"), "x", ""); c != apperr.Permanent {
			t.Errorf("Class = %v, want permanent", c)
		}
	})
	t.Run("E100 burst through Blame", func(t *testing.T) {
		clk := newClock()
		b := NewBlame("60856", clk.now)
		var got []apperr.Class
		for i := range 6 {
			clk.add(time.Second)
			c, _ := b.Class(e("E100"), fmt.Sprint("r-", i), "60856")
			got = append(got, c)
		}
		want := []apperr.Class{apperr.Permanent, apperr.Permanent, apperr.Permanent, apperr.Permanent, apperr.Config, apperr.Config}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("classes = %v, want %v", got, want)
			}
		}
	})
}
