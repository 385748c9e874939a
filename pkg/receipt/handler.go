package receipt

import (
	"cmp"
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"golang.org/x/sync/errgroup"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/emf"
	"github.com/mmsgate/mmsgate/pkg/invocation"
	"github.com/mmsgate/mmsgate/pkg/metric"
	"github.com/mmsgate/mmsgate/pkg/recorded"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// The consumer-side interfaces: only what the handler calls.
type (
	records interface {
		CheckTarget(ctx context.Context, id string) (*store.Target, error)
		CheckReceipt(ctx context.Context, id, trackingID, owner string, hold time.Time) (store.ReceiptDecision, string, error)
		ReceiptDone(ctx context.Context, id, trackingID, owner string) error
		ReceiptRelease(ctx context.Context, id, trackingID, owner string) error
	}
	publisher interface {
		Publish(ctx context.Context, e delivery.Event) error
	}
	queue interface {
		ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	}
)

var (
	_ records   = (*store.Store)(nil)
	_ publisher = (*delivery.Publisher)(nil)
	_ queue     = (*sqs.Client)(nil)
	_ sender    = (*sqs.Client)(nil)
)

// seconds is the EMF unit of ReceiptCheckLate.
const seconds = "Seconds"

// Config is the handler's configuration; zero fields take the defaults.
type Config struct {
	QueueURL string // RECEIPT_QUEUE_URL: the visibility of a record that must come back
	// Window is RECEIPT_WINDOW (0 takes DefaultWindow): a check is due
	// this long after the record's acceptance, whatever its body says.
	Window time.Duration
	// MaxVisibility is the longest wait of a check not yet due: SQS allows
	// invocation.VisibilityLimit from the receive, and this function sets it
	// seconds after (its timeout is 10 s), so a minute less.
	MaxVisibility time.Duration
	// BusyMin, BusyMax bound the (jittered) wait when the tracking id's
	// emitter slot is held.
	BusyMin, BusyMax time.Duration
	// RetryAfter is the wait after a store or publish failure.
	RetryAfter time.Duration
	// Hold is how long a check holds the emitter slot: longer than the
	// function's timeout (10 s), so a hold never ends while its holder runs.
	Hold time.Duration
	// Margin is kept free at the end of an invocation: records not started
	// by then come back after the queue's visibility timeout.
	Margin time.Duration
}

// Deps are the handler's collaborators, built once in main.
type Deps struct {
	Store   records
	Events  publisher
	Queue   queue
	Log     *slog.Logger
	Metrics *emf.Metrics
}

// Handler handles SQS batches of checks. It is safe for concurrent use.
type Handler struct {
	cfg Config
	d   Deps
	now func() time.Time
}

// NewHandler applies the defaults.
func NewHandler(cfg Config, d Deps) *Handler {
	cfg.Window = cmp.Or(cfg.Window, DefaultWindow)
	cfg.MaxVisibility = cmp.Or(cfg.MaxVisibility, invocation.VisibilityLimit-time.Minute)
	cfg.BusyMin = cmp.Or(cfg.BusyMin, 5*time.Second)
	cfg.BusyMax = max(cmp.Or(cfg.BusyMax, 30*time.Second), cfg.BusyMin)
	cfg.RetryAfter = cmp.Or(cfg.RetryAfter, 30*time.Second)
	cfg.Hold = cmp.Or(cfg.Hold, 30*time.Second)
	cfg.Margin = cmp.Or(cfg.Margin, time.Second)
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Handler{cfg: cfg, d: d, now: time.Now}
}

// Handle processes a batch, each record on its own; records that must
// come back (not due yet, busy, failed) are batch item failures with
// their visibility set to when they should.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var mu sync.Mutex
	var failures []events.SQSBatchItemFailure
	g := new(errgroup.Group)
	g.SetLimit(10)
	for _, rec := range ev.Records {
		g.Go(func() error {
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < h.cfg.Margin {
				h.d.Log.WarnContext(ctx, "deadline near; record left for redelivery", "messageId", rec.MessageId)
			} else if h.process(ctx, rec) {
				return nil
			}
			mu.Lock()
			failures = append(failures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
			mu.Unlock()
			return nil
		})
	}
	g.Wait()
	return events.SQSEventResponse{BatchItemFailures: failures}, nil
}

// process handles one check; false means "report it as a failure" (its
// visibility already says when it comes back). The message only makes
// the function look: the request, its tracking id and its due are read
// from the record, since anyone able to write the queue could forge them.
func (h *Handler) process(ctx context.Context, rec events.SQSMessage) bool {
	log := h.d.Log.With("messageId", rec.MessageId)
	c, bodyDue, err := Decode([]byte(rec.Body))
	if err != nil {
		// Only the sender and the postback function write here: a bug, and
		// the same body would fail forever.
		h.d.Metrics.Count(metric.Malformed)
		log.ErrorContext(ctx, "malformed receipt check; dropped", "err", err, "code", apperr.CodeMalformed)
		return true
	}
	if !sendreq.ValidID(c.ID) {
		// Not a request id (too long to key, not ASCII): no record can
		// match, and reading it would fail the same way for hours.
		h.d.Metrics.Count(metric.InvalidCheck)
		log.ErrorContext(ctx, "receipt check of an invalid id; dropped", "idBytes", len(c.ID), "id", snippet(c.ID), "code", apperr.CodeMalformed)
		return true
	}
	log = log.With("id", c.ID)
	now := h.now()
	if now.Before(bodyDue) {
		// The body's due can only delay a check, never hasten it.
		h.setVisibility(ctx, log, rec, min(bodyDue.Sub(now), h.cfg.MaxVisibility))
		return false
	}
	t, err := h.d.Store.CheckTarget(ctx, c.ID)
	if err != nil {
		return h.failed(ctx, log, rec, "cannot read the request", err)
	}
	switch {
	case t == nil:
		h.d.Metrics.Count(metric.CheckDropped)
		log.WarnContext(ctx, "receipt check of a request with no record; dropped")
		return true
	case t.NeedsEvent():
		// Its accepted event is not out yet: unconfirmed never goes first.
		log.InfoContext(ctx, "accepted event still pending; checking again soon")
		h.setVisibility(ctx, log, rec, h.busyWait())
		return false
	case t.State != store.StateAccepted:
		h.d.Metrics.Count(metric.CheckDropped)
		log.WarnContext(ctx, "receipt check of a request that is not accepted; dropped", "state", t.State)
		return true
	}
	due := t.AcceptedAt.Add(h.cfg.Window)
	if t.AcceptedAt.IsZero() {
		due = bodyDue
	}
	if now.Before(due) {
		h.setVisibility(ctx, log, rec, min(due.Sub(now), h.cfg.MaxVisibility))
		return false
	}
	if c.TrackingID != t.TrackingID && c.TrackingID != t.Tracking {
		h.d.Metrics.Count(metric.CheckMismatch)
		log.WarnContext(ctx, "receipt check names a tracking id its record does not; the record's is used", "checkTrackingId", snippet(c.TrackingID))
	}
	log = log.With("trackingId", snippet(t.TrackingID))
	owner := "receipt/" + rec.MessageId + "/" + invocation.ID(ctx)
	d, status, err := h.d.Store.CheckReceipt(ctx, c.ID, t.Tracking, owner, now.Add(h.cfg.Hold))
	if err != nil {
		return h.failed(ctx, log, rec, "cannot record the receipt check", err)
	}
	switch d {
	case store.ReceiptBusy:
		log.InfoContext(ctx, "tracking id being emitted elsewhere; checking again soon")
		h.setVisibility(ctx, log, rec, h.busyWait())
		return false
	case store.ReceiptEmit:
		return h.publish(ctx, log, rec, t, due, status, owner)
	}
	log.InfoContext(ctx, "receipt check done without an event", "decision", d.String())
	return true
}

// publish sends the unconfirmed event this check won, then marks it.
func (h *Handler) publish(ctx context.Context, log *slog.Logger, rec events.SQSMessage, t *store.Target, due time.Time, status, owner string) bool {
	ev := delivery.New(delivery.Unconfirmed, t.About(), due)
	ev.Status = status
	path := &recorded.Path{Events: h.d.Events, Metrics: h.d.Metrics, Now: h.now}
	err := path.Publish(ctx, log, ev,
		func(ctx context.Context) error { return h.d.Store.ReceiptDone(ctx, t.ID, t.Tracking, owner) },
		func(ctx context.Context) error { return h.d.Store.ReceiptRelease(ctx, t.ID, t.Tracking, owner) })
	if err != nil {
		return h.failed(ctx, log, rec, "cannot publish the unconfirmed event", err)
	}
	late := h.now().Sub(due)
	h.d.Metrics.Count(metric.Unconfirmed)
	h.d.Metrics.Put(metric.ReceiptCheckLate, seconds, late.Seconds())
	log.InfoContext(ctx, "unconfirmed", "status", status, "lateMs", late.Milliseconds())
	return true
}

// snippet is a bounded copy of an untrusted string for the logs.
func snippet(s string) string {
	if len(s) > 80 {
		return strings.ToValidUTF8(s[:80], "?") + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// failed logs a store or queue failure and brings the record back after
// RetryAfter.
func (h *Handler) failed(ctx context.Context, log *slog.Logger, rec events.SQSMessage, msg string, err error) bool {
	h.d.Metrics.Count(metric.StoreError)
	log.ErrorContext(ctx, msg+"; retrying", "err", err, "code", apperr.CodeOf(err))
	h.setVisibility(ctx, log, rec, h.cfg.RetryAfter)
	return false
}

// busyWait is a jittered wait between BusyMin and BusyMax.
func (h *Handler) busyWait() time.Duration {
	return h.cfg.BusyMin + rand.N(h.cfg.BusyMax-h.cfg.BusyMin+1)
}

func (h *Handler) setVisibility(ctx context.Context, log *slog.Logger, rec events.SQSMessage, d time.Duration) {
	if err := invocation.SetVisibility(ctx, h.d.Queue, h.cfg.QueueURL, rec.ReceiptHandle, d, h.cfg.MaxVisibility); err != nil {
		log.WarnContext(ctx, "cannot set the visibility; the queue's visibility timeout applies", "err", err)
	}
}
