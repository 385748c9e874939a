package recorded

import (
	"context"
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
