package sender

// Retries and back-off: in doubt, expired or released, and how long a
// record stays hidden before it comes back.

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/invocation"
	"github.com/mmsgate/mmsgate/pkg/metric"
	"github.com/mmsgate/mmsgate/pkg/recorded"
	"github.com/mmsgate/mmsgate/pkg/schedule"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// retry handles a transient failure: in doubt when the call may have
// reached Skycore, expired when the retry window is spent, otherwise
// released with a back-off.
func (h *Handler) retry(ctx context.Context, j *job, e *apperr.Error) outcome {
	code := string(e.Code)
	now := h.now()
	if e.Code == apperr.CodeAmbiguous {
		// Skycore may have taken it: never suppressed, never rejected.
		h.d.Metrics.Count(metric.AmbiguousAnswer)
		j.log.ErrorContext(ctx, "Skycore's answer says it took the request and something else; in doubt", "code", code, "class", "indoubt", "err", e)
	}
	doubt := skycore.MaybeSent(e) && h.cfg.InDoubtWindow > 0
	if !doubt && !now.Before(j.first.Add(h.cfg.RetryWindow)) {
		return h.finish(ctx, j, store.StateExpired, store.Outcome{Code: code, Error: e.Message, To: j.req.To, From: j.req.From, MMSID: string(j.req.MMSID)}, 0)
	}
	if !doubt && h.expiresAtPassed(j) {
		return h.expireAt(ctx, j)
	}
	// Bounded noise (docs/events.md): not every failed attempt is announced.
	o := store.Outcome{Attempt: j.attempt, Code: code, Warnings: j.warnings}
	if skycore.PublishRetrying(j.lastRetrying, e.Code, now) {
		if h.announceRetrying(ctx, j, e) {
			o.RetryCode, o.RetryAt = code, now
		}
	} else {
		j.log.InfoContext(ctx, "retrying event not published (bounded noise)", "code", code,
			"lastCode", j.lastRetrying.Code, "lastAt", j.lastRetrying.At.UTC().Format(time.RFC3339))
	}
	h.d.Metrics.Count(metric.Retried)
	var wait time.Duration
	var applied bool
	var err error
	if doubt {
		until := now.Add(h.cfg.InDoubtWindow)
		applied, err = h.d.Store.Doubt(ctx, j.req.ID, j.owner, until, o)
		wait = h.cfg.InDoubtWindow + time.Second
		h.d.Metrics.Count(metric.InDoubt)
		j.log.WarnContext(ctx, "the call may have reached Skycore; waiting for a postback before sending again",
			"code", code, "class", "indoubt", "until", until.UTC().Format(time.RFC3339), "err", e)
	} else {
		applied, err = h.d.Store.Release(ctx, j.req.ID, j.owner, o)
		n, _ := strconv.Atoi(j.rec.Attributes["ApproximateReceiveCount"])
		wait = min(Backoff(n, e, h.cfg.BaseBackoff, h.cfg.MaxBackoff), max(time.Second, j.first.Add(h.cfg.RetryWindow).Sub(now)))
		// Never past expiresAt: the last retry before it, or back at it to expire.
		exp, _ := j.req.ExpiryTime()
		wait, _ = schedule.RetryDelay(now, exp, wait, schedule.LastRetryLead)
		h.logRetry(ctx, j, e)
	}
	if err != nil {
		j.log.WarnContext(ctx, "cannot release the claim; the next delivery waits for the lease", "err", err)
	} else if !applied {
		// The claim is no longer ours (our lease ran out): the record speaks.
		j.log.InfoContext(ctx, "claim no longer ours after the call", "code", code)
		return redeliver
	}
	h.setVisibility(ctx, j, wait)
	return redeliver
}

// A retrying event's publication: its own deadline, and how long after
// that deadline an unanswered publication is taken to land if it ever
// does (SQS may have taken it with its answer lost).
const (
	RetryingPublishTimeout = time.Second
	RetryingLanding        = 2 * time.Second
)

// announceRetrying publishes j's retrying event before the write that
// gives its claim back, and reports whether it is out. retrying is never
// after accepted because the claim orders them: a postback cannot record
// the acceptance under a live claim (store.AcceptByPostback), and this
// sender records none before giving the claim back. So the publication
// must be over, answered or surely never landing, while the claim lives:
// it is sent alone (a batch call lives as long as its longest-lived
// entry) with a deadline RetryingLanding before the lease ends (a holder
// dying mid-publication leaves the postback out until then); unanswered
// by its deadline, the claim is given back only RetryingLanding after it.
// Without the time for both it is skipped: retrying is optional
// (docs/events.md, "Bounded noise").
func (h *Handler) announceRetrying(ctx context.Context, j *job, e *apperr.Error) bool {
	// Real time, as the lease is (the ctx's deadline).
	deadline := time.Now().Add(RetryingPublishTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Sub(deadline) < RetryingLanding {
		h.d.Metrics.Count(metric.RetryingSkipped)
		j.log.InfoContext(ctx, "retrying event skipped: too little of the claim left to publish it before giving the id back",
			"code", e.Code, "leftMs", time.Until(dl).Milliseconds())
		return false
	}
	pctx := ctx
	if h.d.Outbox != nil {
		pctx = h.d.Outbox.Alone(ctx)
	}
	pctx, cancel := context.WithDeadline(pctx, deadline)
	defer cancel()
	ev := h.event(j.req, delivery.Retrying)
	ev.Code, ev.Error = string(e.Code), e.Message
	err := h.d.Events.Publish(pctx, ev)
	if err == nil {
		return true
	}
	j.log.ErrorContext(ctx, "cannot publish the retrying event; the id is given back once it can no longer land",
		"event", ev.Event, "err", err)
	t := time.NewTimer(time.Until(deadline.Add(RetryingLanding)))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func (h *Handler) logRetry(ctx context.Context, j *job, e *apperr.Error) {
	if e.Class == apperr.Config {
		h.d.Metrics.Count(metric.ConfigError)
		j.log.ErrorContext(ctx, "Skycore refuses the account or deployment; messages wait in the queue", "code", e.Code, "class", "config", "err", e)
		return
	}
	j.log.InfoContext(ctx, "retrying", "code", e.Code, "class", e.Class.String(), "err", e)
}

// storeFailed logs and counts a DynamoDB failure and backs the message off.
func (h *Handler) storeFailed(ctx context.Context, j *job, msg string, err error) {
	h.d.Metrics.Count(metric.StoreError)
	e, _ := apperr.As(err)
	if apperr.ClassOf(err) == apperr.Config {
		h.d.Metrics.Count(metric.ConfigError)
		j.log.ErrorContext(ctx, msg+"; DynamoDB refuses it for good", "err", err, "code", apperr.CodeOf(err), "class", "config")
	} else {
		j.log.ErrorContext(ctx, msg, "err", err, "code", apperr.CodeOf(err))
	}
	n, _ := strconv.Atoi(j.rec.Attributes["ApproximateReceiveCount"])
	h.setVisibility(ctx, j, Backoff(n, e, h.cfg.BaseBackoff, h.cfg.MaxBackoff))
}

// persist retries a bookkeeping write with back-off until the margin at the
// end of the invocation.
func (h *Handler) persist(ctx context.Context, fn func(context.Context) error) error {
	return recorded.RetryTransient(ctx, fn)
}

// Backoff is the visibility delay for the n-th receive of a message that
// failed with e (nil: an infrastructure failure): exponential, capped, with
// jitter; the cap for codes that ask for it; at least E106's seconds.
func Backoff(n int, e *apperr.Error, base, cap time.Duration) time.Duration {
	if e != nil && skycore.LongBackoff(e) {
		return cap
	}
	d := base
	for i := 1; i < n && d < cap; i++ {
		d *= 2
	}
	d = min(d, cap)
	d = d/2 + rand.N(d/2+1) // jitter, so that a burst of failures spreads out
	if e != nil && e.Wait > d {
		d = min(e.Wait, cap)
	}
	return d
}

func (h *Handler) setVisibility(ctx context.Context, j *job, d time.Duration) {
	if err := invocation.SetVisibility(ctx, h.d.Queue, h.queueOf(j), j.rec.ReceiptHandle, d, MaxVisibility); err != nil {
		j.log.WarnContext(ctx, "cannot set the retry back-off; the queue's visibility timeout applies", "err", err)
	}
}

// lease ends with the invocation's deadline: after it, the id is in doubt.
func (h *Handler) lease(ctx context.Context) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return h.now().Add(15 * time.Minute)
}

// sentAt is when SQS first received the message (the retry window's start).
func sentAt(rec events.SQSMessage, def time.Time) time.Time {
	if ms, err := strconv.ParseInt(rec.Attributes["SentTimestamp"], 10, 64); err == nil && ms > 0 {
		return time.UnixMilli(ms)
	}
	return def
}
