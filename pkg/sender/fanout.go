package sender

// The fan-out: a batch's records processed concurrently, each ending in
// an outcome.

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"golang.org/x/sync/errgroup"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/metric"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
)

// Handle processes a batch: each record on its own, at most Concurrency at
// a time. Records that should come back are reported in BatchItemFailures;
// an error (the secret cannot be read at all) retries the whole batch.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	keys, err := h.d.Keys.Get(ctx)
	if err != nil {
		h.d.Log.ErrorContext(ctx, "cannot read the Skycore secret; the whole batch will be retried", "err", err, "code", apperr.CodeOf(err))
		h.d.Metrics.Count(metric.SecretUnavailable)
		return events.SQSEventResponse{}, fmt.Errorf("send-mms: secret unavailable: %w", err)
	}
	hk := handoffKey(keys.APIKey)
	var mu sync.Mutex
	var failures []events.SQSBatchItemFailure
	fail := func(id string) {
		mu.Lock()
		failures = append(failures, events.SQSBatchItemFailure{ItemIdentifier: id})
		mu.Unlock()
	}
	if h.d.Outbox != nil {
		ctx = h.d.Outbox.Group(ctx)
	}
	g := new(errgroup.Group)
	g.SetLimit(h.cfg.Concurrency)
	seen := make(map[string]bool, len(ev.Records))
	for _, rec := range ev.Records {
		// A message twice in one batch is processed once: its copies would
		// share a claim owner (message id and invocation), and a claim
		// whose answer was lost is recognised by its owner. The batch
		// response names it by message id, so both copies share its fate.
		if seen[rec.MessageId] {
			continue
		}
		seen[rec.MessageId] = true
		g.Go(func() error {
			if !h.timeLeft(ctx) {
				// Not started: it comes back after its visibility timeout.
				h.d.Log.WarnContext(ctx, "deadline near; record left for redelivery", "messageId", rec.MessageId)
				fail(rec.MessageId)
				return nil
			}
			ctx := ctx
			if h.d.Outbox != nil {
				var leave func()
				ctx, leave = h.d.Outbox.Join(ctx)
				defer leave()
			}
			if h.process(ctx, hk, rec) == redeliver {
				fail(rec.MessageId)
			}
			return nil
		})
	}
	g.Wait()
	return events.SQSEventResponse{BatchItemFailures: failures}, nil
}

// timeLeft reports whether a useful call plus the margin still fit.
// SKYCORE_TIMEOUT only caps a call; it is never a reason to skip one.
func (h *Handler) timeLeft(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) >= h.cfg.MinCall+h.cfg.Margin
}

// job is one record being processed.
type job struct {
	rec     events.SQSMessage
	attempt int // the claim's attempt number
	req     *sendreq.Request
	owner   string
	first   time.Time
	log     *slog.Logger
	// warnings are the request's advice-level findings (req.Warnings()),
	// recorded with its acceptance.
	warnings []string
	// lastRetrying is the last retrying event published for the id, from
	// the record (docs/events.md "Bounded noise").
	lastRetrying skycore.RetryNote
}

// outcome is what becomes of a record once processed.
type outcome int

const (
	// ack: done with it; it leaves the queue.
	ack outcome = iota
	// redeliver: reported as a batch item failure, it comes back (its
	// visibility, when set, says when).
	redeliver
)
