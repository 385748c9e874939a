package schedule

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"golang.org/x/sync/errgroup"

	"github.com/mmsgate/mmsgate/pkg/metric"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// Timing of a sweep.
const (
	// Period is how often the rule runs a sweep (template.yaml).
	Period = time.Minute
	// Lookahead: a sweep hands off what is due before its next run plus
	// the rule's jitter, each body delayed on the queue until its sendAt.
	Lookahead = 2 * Period
	// ClaimLease is how long a claimed entry is left to its sweeper before
	// another sweep may take it again (its sweeper died): its dueMs moves
	// past the look-ahead of every sweep within the lease.
	ClaimLease = Period
	// MaxDelay is SQS's longest DelaySeconds.
	MaxDelay = 15 * time.Minute
	// batch is how many entries a sweep reads from the index at a time.
	batch = 500
)

// The consumer-side interfaces: only what the sweeper calls.
type (
	records interface {
		Due(ctx context.Context, q store.Querier, until time.Time, limit int) ([]store.DueItem, error)
		ClaimDue(ctx context.Context, id string, seen time.Time, lease time.Duration) (bool, *store.Scheduled, error)
		Unschedule(ctx context.Context, id string, dueBy time.Time) (bool, *store.Message, error)
	}
	queue interface {
		SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	}
	metrics interface {
		Count(name string, extra ...string)
	}
)

// Config is the sweeper's environment.
type Config struct {
	SendQueueURL     string // SEND_QUEUE_URL
	BulkSendQueueURL string // BULK_SEND_QUEUE_URL: where bulk-lane requests go back; "" sends them to SEND_QUEUE_URL
	Concurrency      int    // hand-offs in parallel (default 16)
	// Margin is kept free at the end of an invocation.
	Margin time.Duration
}

// Deps are the sweeper's clients.
type Deps struct {
	Store   records
	Index   store.Querier
	Queue   queue
	Log     *slog.Logger
	Metrics metrics
}

// Sweeper hands due scheduled requests back to their send queue.
type Sweeper struct {
	cfg Config
	d   Deps
	now func() time.Time
}

// New returns a sweeper.
func New(cfg Config, d Deps) *Sweeper {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.Margin <= 0 {
		cfg.Margin = 2 * time.Second
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Sweeper{cfg: cfg, d: d, now: time.Now}
}

// SetClock replaces the sweeper's clock (tests).
func (sw *Sweeper) SetClock(now func() time.Time) { sw.now = now }

// Report is what one sweep did.
type Report struct {
	Due       int // entries the index listed
	HandedOff int // bodies put back on a send queue and unscheduled
	Lost      int // claims lost to another sweeper, a cancel or a stale index entry
	Failed    int // left for a later sweep (SendMessage or a write failed)
}

// Handle is the Lambda entry point (the rule's event is not read).
func (sw *Sweeper) Handle(ctx context.Context) error {
	r, err := sw.Sweep(ctx)
	sw.d.Log.InfoContext(ctx, "sweep", "due", r.Due, "handedOff", r.HandedOff, "lost", r.Lost, "failed", r.Failed)
	return err
}

// Sweep hands off everything due within Lookahead, batch after batch,
// until none is left or the invocation's time is nearly out. Only a
// failure to read the index is an error: anything else is left in the
// index for the next sweep.
func (sw *Sweeper) Sweep(ctx context.Context) (Report, error) {
	var r Report
	for {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < sw.cfg.Margin {
			return r, nil
		}
		now := sw.now()
		until := now.Add(Lookahead)
		due, err := sw.d.Store.Due(ctx, sw.d.Index, until, batch)
		if err != nil {
			sw.count(metric.ScheduleSweepFailed)
			return r, err
		}
		r.Due += len(due)
		var handed, lost, failed atomic.Int64
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(sw.cfg.Concurrency)
		for _, it := range due {
			g.Go(func() error {
				switch err := sw.handOff(gctx, it, until); {
				case errors.Is(err, errLost):
					lost.Add(1)
				case err != nil:
					failed.Add(1)
					sw.d.Log.WarnContext(gctx, "scheduled request left for the next sweep", "id", it.ID, "err", err)
				default:
					handed.Add(1)
				}
				return nil
			})
		}
		g.Wait()
		r.HandedOff += int(handed.Load())
		r.Lost += int(lost.Load())
		r.Failed += int(failed.Load())
		if handed.Load() > 0 {
			sw.count(metric.ScheduledHandedOff)
		}
		// Nothing listed is the end; a page of which nothing moved is the
		// index lagging behind the claims: the next sweep sees it.
		if len(due) == 0 || handed.Load() == 0 {
			return r, nil
		}
	}
}

var errLost = errors.New("claimed elsewhere")

// handOff claims one entry, puts its body on its queue delayed until its
// sendAt, and ends its wait. A crash after the SendMessage leaves the
// entry claimed: the next sweep after ClaimLease sends the body once more,
// which the sender's claim makes harmless.
func (sw *Sweeper) handOff(ctx context.Context, it store.DueItem, until time.Time) error {
	ok, sc, err := sw.d.Store.ClaimDue(ctx, it.ID, it.Due, Lookahead+ClaimLease)
	if err != nil {
		return err
	}
	if !ok {
		return errLost
	}
	if sc.Body == "" { // written by nothing we know: never invent a request
		return errors.New("scheduled record has no body")
	}
	url := sw.cfg.SendQueueURL
	if sc.Lane == "bulk" && sw.cfg.BulkSendQueueURL != "" {
		url = sw.cfg.BulkSendQueueURL
	}
	_, err = sw.d.Queue.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(sc.Body),
		DelaySeconds: delaySeconds(sc.SendAt.Sub(sw.now()))})
	if err != nil {
		return err
	}
	if _, _, err := sw.d.Store.Unschedule(ctx, it.ID, until); err != nil {
		return err // the body is on its way; the record stays claimed until the lease
	}
	return nil
}

// delaySeconds rounds d up to whole seconds (never early), within SQS's
// 0–900.
func delaySeconds(d time.Duration) int32 {
	if d <= 0 {
		return 0
	}
	return int32((min(d, MaxDelay) + time.Second - 1) / time.Second)
}

func (sw *Sweeper) count(name string) {
	if sw.d.Metrics != nil {
		sw.d.Metrics.Count(name)
	}
}
