// Package recorded is the one path by which a recorded event reaches the
// application: the sender, the postback function and the receipt check
// each build their events with delivery.New from what they hold and what
// the record tells (store.Message.About), and publish a request's pending
// terminal event through Path.Pending. Everything that must happen before
// a terminal event goes out (the tracking id's link, the receipt check,
// an expired body's move to the DLQ) is here, in order, once.
package recorded

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/emf"
	"github.com/mmsgate/mmsgate/pkg/metric"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// The consumer-side interfaces: only what the path calls.
type (
	records interface {
		Link(ctx context.Context, trackingID, id string, md map[string]string) error
		EventSent(ctx context.Context, id string) error
		ReleaseEvent(ctx context.Context, id, owner string) error
	}
	publisher interface {
		Publish(ctx context.Context, e delivery.Event) error
	}
	// Receipts schedules the receipt check of an accepted request
	// (pkg/receipt's Scheduler): the one hook for it.
	Receipts interface {
		Schedule(ctx context.Context, id, trackingID string, due time.Time) error
	}
)

var _ records = (*store.Store)(nil)

// Path publishes recorded events. Its zero fields are off: no Receipts (or
// no ReceiptWindow) schedules no check; no Metrics counts nothing.
type Path struct {
	Store         records
	Events        publisher
	Receipts      Receipts
	ReceiptWindow time.Duration // RECEIPT_WINDOW
	Metrics       *emf.Metrics
	// Retry runs a bookkeeping write (the link) with the caller's retry
	// policy; nil runs it once.
	Retry func(ctx context.Context, fn func(context.Context) error) error
	Now   func() time.Time // nil is time.Now
	// PublishTimeout bounds an event's publication and its mark, which the
	// end of the invocation does not cancel (0: DefaultPublishTimeout).
	PublishTimeout time.Duration
}

// DefaultPublishTimeout is the publication's own deadline: short, within
// the margin an invocation keeps free at its end.
const DefaultPublishTimeout = 2 * time.Second

func (p *Path) now() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}

// Terminal is m's pending terminal event (accepted, rejected, expired) as
// the record tells it, occurring at at; known fills what the record lacks
// (an acceptance recorded from a postback has no to, from or mmsId).
// Metadata is the record's alone: the id's first claim kept it, and a body
// delivered later under the same id, or a cancel's tombstone the request
// never reached, must not lend it other metadata.
func Terminal(m *store.Message, known delivery.About, at time.Time) delivery.Event {
	a := m.About().Or(known)
	a.Metadata = m.Metadata
	ev := delivery.New(m.PendingEvent, a, at)
	ev.Code, ev.Error, ev.Suppressed = m.Code, m.Error, m.Suppressed
	if ev.Event == delivery.Accepted {
		ev.Warnings = m.Warnings // kept on the record: a later publisher has no request
	}
	return ev
}

// Pending publishes m's pending terminal event, which owner holds, and
// marks it sent. Before it, each idempotent step that must precede it: the
// link of an accepted request's tracking id, its receipt check, and, for
// an expired request, deadLetter (nil: none). Whoever publishes a pending
// event redoes them all, so a crash between any two leaves the event
// pending and the next taker completes every step. On failure the event
// is released at once for the next taker and the error returned.
func (p *Path) Pending(ctx context.Context, log *slog.Logger, m *store.Message, owner string, known delivery.About, deadLetter func(context.Context) error) error {
	ev := Terminal(m, known, p.now())
	release := func(msg string, err error) error {
		log.ErrorContext(ctx, msg+"; the event stays pending", "id", m.ID, "event", ev.Event, "err", err)
		if rerr := p.Store.ReleaseEvent(context.WithoutCancel(ctx), m.ID, owner); rerr != nil {
			log.WarnContext(ctx, "cannot release the pending event; the next taker waits for its hold", "id", m.ID, "err", rerr)
		}
		return err
	}
	if ev.Event == delivery.Accepted && m.TrackingID != "" {
		link := func(ctx context.Context) error { return p.Store.Link(ctx, m.TrackingID, m.ID, m.Metadata) }
		var err error
		if p.Retry != nil {
			err = p.Retry(ctx, link)
		} else {
			err = link(ctx)
		}
		if errors.Is(err, store.ErrLinkConflict) {
			// Another request holds this tracking id: never re-pointed.
			p.Metrics.Count(metric.LinkConflict)
			log.ErrorContext(ctx, "tracking id already linked to another request", "id", m.ID, "trackingId", m.TrackingID, "code", apperr.CodeConflict)
		} else if err != nil {
			p.Metrics.Count(metric.LinkFailed)
			return release("cannot link the tracking id", err)
		}
	}
	if ev.Event == delivery.Accepted && p.Receipts != nil && p.ReceiptWindow > 0 {
		// A duplicate check (a retry of this step) is harmless.
		if err := p.Receipts.Schedule(ctx, m.ID, m.TrackingID, p.now().Add(p.ReceiptWindow)); err != nil {
			p.Metrics.Count(metric.ReceiptScheduleFailed)
			return release("cannot schedule the receipt check", err)
		}
	}
	if m.State == store.StateExpired && deadLetter != nil {
		if err := deadLetter(ctx); err != nil {
			return release("cannot move the expired body to the DLQ", err)
		}
	}
	return p.Publish(ctx, log, ev,
		func(ctx context.Context) error { return p.Store.EventSent(ctx, m.ID) },
		func(ctx context.Context) error { return p.Store.ReleaseEvent(ctx, m.ID, owner) })
}

// Publish sends ev, then marks it with mark (a failure to mark is logged:
// the event is out, a later taker could publish it once more). When the
// publication fails, release (nil: none) gives back what was held, and the
// error is returned.
//
// A publication in flight is not cancelled by the invocation's end: SQS may
// have taken the event already, and an answer cut off there would leave it
// pending, published again by the next taker. It may use all the time the
// invocation has left, and at least PublishTimeout past its end. The mark
// has a budget of its own (a slow publication must not starve it) and is
// retried while transient (a throttled mark leaves the event pending, and
// its next taker, a redelivery or a postback, would publish it again).
func (p *Path) Publish(ctx context.Context, log *slog.Logger, ev delivery.Event, mark, release func(context.Context) error) error {
	pctx, cancel := p.budget(ctx)
	defer cancel()
	if err := p.Events.Publish(pctx, ev); err != nil {
		log.ErrorContext(ctx, "cannot publish the event", "id", ev.ID, "event", ev.Event, "err", err)
		if release != nil {
			if rerr := release(context.WithoutCancel(ctx)); rerr != nil {
				log.WarnContext(ctx, "cannot release after a failed publication; the retry waits for its hold", "id", ev.ID, "err", rerr)
			}
		}
		return err
	}
	if mark != nil {
		mctx, cancel := p.budget(ctx)
		defer cancel()
		if err := RetryTransient(mctx, mark); err != nil {
			p.Metrics.Count(metric.EventUnmarked)
			log.WarnContext(ctx, "event published but not marked", "id", ev.ID, "event", ev.Event, "err", err)
		}
	}
	log.InfoContext(ctx, "delivery event", "id", ev.ID, "event", ev.Event)
	return nil
}

// budget is a context for a step that must not be cut by the invocation's
// end: the invocation's remaining time, at least PublishTimeout.
func (p *Path) budget(ctx context.Context) (context.Context, context.CancelFunc) {
	d := cmp.Or(p.PublishTimeout, DefaultPublishTimeout)
	if dl, ok := ctx.Deadline(); ok {
		d = max(d, time.Until(dl))
	}
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}

// RetryTransient runs a bookkeeping write, again with back-off (50 ms
// doubling to 1 s) while it fails transiently (a throttle, a timeout),
// until ctx's deadline is too close for one more try.
func RetryTransient(ctx context.Context, fn func(context.Context) error) error {
	wait := 50 * time.Millisecond
	for {
		err := fn(ctx)
		if err == nil || !apperr.Transient(err) {
			return err
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait+500*time.Millisecond {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(wait*2, time.Second)
	}
}
