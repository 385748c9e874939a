package recorded

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// marks records what the path did to the record.
type marks struct {
	mu             sync.Mutex
	sent, released int
}

func (m *marks) Link(context.Context, string, string, map[string]string) error { return nil }
func (m *marks) EventSent(ctx context.Context, _ string) error {
	if err := ctx.Err(); err != nil {
		return err // as DynamoDB's client does
	}
	m.mu.Lock()
	m.sent++
	m.mu.Unlock()
	return nil
}
func (m *marks) ReleaseEvent(context.Context, string, string) error {
	m.mu.Lock()
	m.released++
	m.mu.Unlock()
	return nil
}

// slowSQS takes the event only after past (the invocation's deadline) has
// gone by, and answers then, unless its own context ended first (as the
// SDK fails a call whose context is done).
type slowSQS struct {
	past      context.Context
	published int
}

func (s *slowSQS) Publish(ctx context.Context, _ delivery.Event) error {
	select {
	case <-s.past.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-time.After(50 * time.Millisecond):
		s.published++
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestPublishInFlightOutlivesTheInvocation: an event publication already
// in flight when the invocation's deadline passes is not cancelled by it:
// SQS answers within the publication's own deadline, and the event is
// marked sent (not released, so never published a second time).
func TestPublishInFlightOutlivesTheInvocation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	q := &slowSQS{past: ctx}
	rec := &marks{}
	p := &Path{Store: rec, Events: q, PublishTimeout: time.Second}
	m := &store.Message{ID: "inflight-1", State: store.StateRejected, PendingEvent: delivery.Rejected, Code: "E110"}
	if err := p.Pending(ctx, slog.New(slog.DiscardHandler), m, "owner", delivery.About{ID: "inflight-1"}, nil); err != nil {
		t.Fatalf("Pending = %v", err)
	}
	if q.published != 1 || rec.sent != 1 || rec.released != 0 {
		t.Errorf("published %d, marked sent %d, released %d; want 1, 1, 0", q.published, rec.sent, rec.released)
	}

	// Its own deadline still bounds it: an SQS that never answers fails
	// it within PublishTimeout, and the event is released for the next taker.
	never, stop := context.WithCancel(context.Background())
	defer stop()
	hung := &slowSQS{past: never} // never answers: waits on its context alone
	start := time.Now()
	p = &Path{Store: rec, Events: hung, PublishTimeout: 200 * time.Millisecond}
	if err := p.Pending(context.Background(), slog.New(slog.DiscardHandler), m, "owner", delivery.About{}, nil); err == nil {
		t.Error("Pending with SQS hung = nil, want its deadline's error")
	}
	if d := time.Since(start); d > 2*time.Second || rec.released != 1 {
		t.Errorf("hung publication ended after %s, released %d; want about 200ms, 1", d, rec.released)
	}
}

// throttledMarks refuses the mark (as DynamoDB throttles) until `until`.
type throttledMarks struct {
	marks
	until time.Time
	tries int
}

func (m *throttledMarks) EventSent(ctx context.Context, id string) error {
	m.mu.Lock()
	m.tries++
	m.mu.Unlock()
	if time.Now().Before(m.until) {
		return errors.New("ProvisionedThroughputExceededException")
	}
	return m.marks.EventSent(ctx, id)
}

// slowPublish takes d to publish, unless its context ends first.
type slowPublish struct {
	d         time.Duration
	published int
}

func (s *slowPublish) Publish(ctx context.Context, _ delivery.Event) error {
	select {
	case <-time.After(s.d):
		s.published++
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestMarkSurvivesAThrottleAndASlowPublication: an event once published is
// marked even when DynamoDB throttles the mark for a while and the
// publication itself took longer than PublishTimeout: left unmarked, it
// stays pending and its next taker (a redelivery, a postback) publishes it
// a second time.
func TestMarkSurvivesAThrottleAndASlowPublication(t *testing.T) {
	m := &store.Message{ID: "mark-1", State: store.StateRejected, PendingEvent: delivery.Rejected, Code: "E110"}
	for _, tc := range []struct {
		name      string
		throttle  time.Duration // the mark refused this long after the publication
		publish   time.Duration // the publication's own time
		invoke    time.Duration // the invocation's time left
		wantMarks int
	}{
		{"throttled mark, retried", 700 * time.Millisecond, 0, 3 * time.Second, 1},
		{"publication slower than PublishTimeout, time left", 0, 600 * time.Millisecond, 3 * time.Second, 1},
		{"both", 700 * time.Millisecond, 600 * time.Millisecond, 3 * time.Second, 1},
		{"throttled past every budget", time.Hour, 0, 2 * time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.invoke > 0 {
				var cancel func()
				ctx, cancel = context.WithTimeout(ctx, tc.invoke)
				defer cancel()
			}
			q := &slowPublish{d: tc.publish}
			rec := &throttledMarks{until: time.Now().Add(tc.publish + tc.throttle)}
			p := &Path{Store: rec, Events: q, PublishTimeout: 400 * time.Millisecond}
			if err := p.Pending(ctx, slog.New(slog.DiscardHandler), m, "owner", delivery.About{ID: m.ID}, nil); err != nil {
				t.Fatalf("Pending = %v", err)
			}
			if q.published != 1 || rec.sent != tc.wantMarks || rec.released != 0 {
				t.Errorf("published %d, marked %d (after %d tries), released %d; want 1, %d, 0",
					q.published, rec.sent, rec.tries, rec.released, tc.wantMarks)
			}
			if tc.wantMarks == 0 && rec.tries < 3 {
				t.Errorf("a throttled mark tried %d times, want retries while the invocation lasts", rec.tries)
			}
		})
	}
}
