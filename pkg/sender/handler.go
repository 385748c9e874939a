// Package sender is the send-mms function: an SQS batch of send requests
// (docs/request.md) → idempotent sendSavedMMS calls → delivery events (docs/events.md).
//
// Every request with a usable id ends in exactly one terminal event
// (accepted, rejected or expired), written to the record before it is
// published. The record's state machine is pkg/store's; this package only
// decides which transition to ask for.
package sender

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/emf"
	"github.com/mmsgate/mmsgate/pkg/invocation"
	"github.com/mmsgate/mmsgate/pkg/metric"
	"github.com/mmsgate/mmsgate/pkg/recorded"
	"github.com/mmsgate/mmsgate/pkg/secret"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// The consumer-side interfaces: only what the handler calls.
type (
	keySource interface {
		Get(ctx context.Context) (secret.Values, error)
		Refresh(ctx context.Context, stale secret.Values) (secret.Values, error)
	}
	api interface {
		SendSavedMMS(ctx context.Context, apiKey string, r *sendreq.Request) (*skycore.Response, error)
	}
	records interface {
		Claim(ctx context.Context, id string, c store.Claim) (bool, *store.Message, error)
		Accept(ctx context.Context, id, owner string, hold time.Time, o store.Outcome) (bool, *store.Message, error)
		Reject(ctx context.Context, id, owner string, hold time.Time, o store.Outcome) (bool, *store.Message, error)
		Expire(ctx context.Context, id, owner string, hold time.Time, o store.Outcome) (bool, *store.Message, error)
		Release(ctx context.Context, id, owner string, o store.Outcome) (bool, error)
		Doubt(ctx context.Context, id, owner string, until time.Time, o store.Outcome) (bool, error)
		Link(ctx context.Context, trackingID, id string) error
		TakeEvent(ctx context.Context, id, owner string, hold time.Time) (bool, *store.Message, error)
		EventSent(ctx context.Context, id string) error
		ReleaseEvent(ctx context.Context, id, owner string) error
		Suppressed(ctx context.Context, key string) (*store.Suppression, error)
		Suppress(ctx context.Context, key, code, id string, ttl time.Duration) error
	}
	publisher interface {
		Publish(ctx context.Context, e delivery.Event) error
	}
	// batcher groups the sends of a batch's records (pkg/outbox); nil
	// sends each at once.
	batcher interface {
		Group(ctx context.Context) context.Context
		Join(ctx context.Context) (context.Context, func())
	}
	queue interface {
		ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
		SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	}
)

// Config is the handler's part of docs/configuration.md.
type Config struct {
	Policy        sendreq.Policy
	Concurrency   int           // SEND_CONCURRENCY
	RatePerSecond float64       // SEND_RATE_PER_SECOND; 0 is off
	CallTimeout   time.Duration // SKYCORE_TIMEOUT, capped by the time left
	RetryWindow   time.Duration // SEND_RETRY_WINDOW: then expired
	InDoubtWindow time.Duration // SEND_INDOUBT_WINDOW: 0 sends an in-doubt request again at once
	// SuppressCodes are the Skycore codes that put a number on the
	// suppression list (SUPPRESS_CODES); E715 suppresses per campaign.
	SuppressCodes []string
	SuppressTTL   time.Duration // SUPPRESS_TTL
	SendQueueURL  string        // SEND_QUEUE_URL
	DLQURL        string        // DEAD_LETTER_QUEUE_URL
	// Margin is kept free at the end of an invocation for bookkeeping.
	Margin time.Duration
	// MinCall is the least time worth starting a Skycore call with.
	MinCall time.Duration
	// BaseBackoff is the first retry's visibility delay, doubled per receive.
	BaseBackoff time.Duration
	// MaxBackoff caps it (SQS allows 12 h; we wait at most 15 min).
	MaxBackoff time.Duration
	// ReceiptWindow is RECEIPT_WINDOW (pkg/receipt): an accepted request with
	// no final receipt by then gets one unconfirmed event (pkg/receipt);
	// 0 is off.
	ReceiptWindow time.Duration
}

// MaxVisibility is the longest a record is hidden for. SQS refuses a
// visibility beyond 12 hours in all from the receive (the whole change,
// not the excess); the receive came at most a batching window (5 min)
// before the invocation, and this call at most a function timeout (15
// min) into it.
const MaxVisibility = invocation.VisibilityLimit - 20*time.Minute

// Defaults of docs/configuration.md.
const (
	DefaultConcurrency   = 10
	DefaultRetryWindow   = 24 * time.Hour
	DefaultInDoubtWindow = 15 * time.Minute
	DefaultSuppressTTL   = 72 * time.Hour
	DefaultBaseBackoff   = 5 * time.Second
	DefaultMaxBackoff    = 15 * time.Minute
)

// Deps are the handler's collaborators, built once in main.
type Deps struct {
	Keys    keySource
	Skycore api
	Store   records
	Events  publisher
	Queue   queue
	// Receipts schedules receipt checks (with Config.ReceiptWindow); nil is off.
	Receipts recorded.Receipts
	// Outbox, when set, is what Events and Receipts send through: each
	// invocation is a group and each of its records joins it, so the
	// messages of one batch go out in SendMessageBatch calls (never with
	// another invocation's, whose deadline is not theirs).
	Outbox  batcher
	Log     *slog.Logger
	Metrics *emf.Metrics
}

// Handler handles SQS batches. It is safe for concurrent use.
type Handler struct {
	cfg     Config
	d       Deps
	limiter *rate.Limiter
	now     func() time.Time
}

// NewHandler applies defaults to cfg. InDoubtWindow is taken as given (0
// is a valid setting).
func NewHandler(cfg Config, d Deps) *Handler {
	cfg.Concurrency = cmp.Or(cfg.Concurrency, DefaultConcurrency)
	cfg.CallTimeout = cmp.Or(cfg.CallTimeout, skycore.DefaultTimeout)
	cfg.RetryWindow = cmp.Or(cfg.RetryWindow, DefaultRetryWindow)
	cfg.Margin = cmp.Or(cfg.Margin, 2*time.Second)
	cfg.MinCall = cmp.Or(cfg.MinCall, time.Second)
	cfg.SuppressTTL = cmp.Or(cfg.SuppressTTL, DefaultSuppressTTL)
	cfg.BaseBackoff = cmp.Or(cfg.BaseBackoff, DefaultBaseBackoff)
	cfg.MaxBackoff = cmp.Or(cfg.MaxBackoff, DefaultMaxBackoff)
	h := &Handler{cfg: cfg, d: d, now: time.Now}
	if cfg.RatePerSecond > 0 {
		h.limiter = rate.NewLimiter(rate.Limit(cfg.RatePerSecond), max(1, int(cfg.RatePerSecond)))
	}
	if h.d.Log == nil {
		h.d.Log = slog.New(slog.DiscardHandler)
	}
	return h
}

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
	for _, rec := range ev.Records {
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

// process handles one record.
func (h *Handler) process(ctx context.Context, hk []byte, rec events.SQSMessage) outcome {
	j := &job{rec: rec, owner: rec.MessageId + "/" + invocation.ID(ctx), first: sentAt(rec, h.now()),
		log: h.d.Log.With("messageId", rec.MessageId)}
	req, verr := sendreq.Decode([]byte(rec.Body))
	if req == nil || !sendreq.ValidID(req.ID) {
		if verr == nil {
			verr = req.Validate(h.cfg.Policy) // names the id rule
		}
		return h.malformed(ctx, j, verr)
	}
	j.req = req
	j.log = j.log.With("id", req.ID)

	ho, present := readHandoff(hk, rec)
	if present && ho == nil {
		// Written by someone who cannot sign: ignored, the body is handled as
		// any other request.
		h.d.Metrics.Count(metric.ForgedHandoff)
		j.log.WarnContext(ctx, "hand-off attributes without a valid signature; ignored", "code", "FORGED", "class", "hostile")
	}
	req.ApplyDefaults(h.cfg.Policy)
	if err := req.Validate(h.cfg.Policy); err != nil {
		// Every violated field, the decoding's first (its code leads).
		verr = errors.Join(verr, err)
	}
	if ho != nil && verr == nil {
		j.first = ho.first()
		return h.recordHandoff(ctx, j, ho)
	}

	claimed, m, err := h.d.Store.Claim(ctx, req.ID, store.Claim{Owner: j.owner, Lease: h.lease(ctx), First: j.first, InDoubt: h.cfg.InDoubtWindow})
	if err != nil {
		h.storeFailed(ctx, j, "cannot claim the request id", err)
		return redeliver
	}
	if !claimed {
		return h.notClaimed(ctx, j, m)
	}
	if !m.First.IsZero() {
		j.first = m.First
	}
	j.attempt = m.Attempts
	if verr != nil {
		return h.finish(ctx, j, store.StateRejected, rejection(j.req, verr), 0)
	}
	if m.Attempts > 1 && m.Code != "" && !h.now().Before(j.first.Add(h.cfg.RetryWindow)) {
		// Failed before, and the window is spent (it may have waited in
		// doubt past it): the last word is expired, not one more call.
		return h.finish(ctx, j, store.StateExpired, store.Outcome{Code: m.Code, Error: "still failing when SEND_RETRY_WINDOW ran out",
			To: req.To, From: req.From, MMSID: string(req.MMSID)}, 0)
	}
	if sup, err := h.suppressed(ctx, req); err != nil {
		h.storeFailed(ctx, j, "cannot read the suppression list", err)
		if _, rerr := h.d.Store.Release(ctx, req.ID, j.owner, store.Outcome{Attempt: j.attempt, Code: string(apperr.CodeOf(err))}); rerr != nil {
			j.log.WarnContext(ctx, "cannot release the claim; the next delivery waits for the lease", "err", rerr)
		}
		return redeliver
	} else if sup != nil {
		h.d.Metrics.Count(metric.Suppressed)
		return h.finish(ctx, j, store.StateRejected, store.Outcome{Code: sup.Code, Suppressed: true,
			Error: fmt.Sprintf("%s: suppressed: %s was refused with %s at %s (request %s); no call until %s",
				sup.Code, sup.Key, sup.Code, sup.At.UTC().Format(time.RFC3339), sup.ID, sup.Until.UTC().Format(time.RFC3339)),
			To: req.To, From: req.From, MMSID: string(req.MMSID)}, 0)
	}
	for _, w := range req.Warnings() {
		j.log.WarnContext(ctx, w)
	}
	start := h.now()
	resp, err := h.call(ctx, req)
	latency := h.now().Sub(start)
	j.log = j.log.With("latencyMs", latency.Milliseconds())
	h.d.Metrics.Put(metric.SkycoreLatency, emf.Milliseconds, float64(latency.Milliseconds()))
	if err == nil {
		return h.accepted(ctx, j, resp)
	}
	e, ok := apperr.As(err)
	if !ok {
		e = &apperr.Error{Code: apperr.CodeInternal, Class: apperr.Unclassified, Message: "unexpected failure", Err: err}
	}
	if e.Class == apperr.Permanent {
		if !skycore.Known(e) {
			j.log.ErrorContext(ctx, "Skycore answered with an unknown code; treated as permanent", "code", e.Code, "err", e)
			h.d.Metrics.Count(metric.UnknownCode)
		}
		h.suppress(ctx, j, e)
		return h.finish(ctx, j, store.StateRejected, rejection(j.req, e), latency)
	}
	return h.retry(ctx, j, e)
}

// suppressionKeys are the keys a request is checked against: its number,
// and its number within its campaign.
func suppressionKeys(req *sendreq.Request) []string {
	keys := []string{store.SuppressionKey(req.To, "")}
	if req.CampaignRef != "" {
		keys = append(keys, store.SuppressionKey(req.To, req.CampaignRef))
	}
	return keys
}

// suppressed returns the live suppression of the request's number, if any.
func (h *Handler) suppressed(ctx context.Context, req *sendreq.Request) (*store.Suppression, error) {
	if len(h.cfg.SuppressCodes) == 0 {
		return nil, nil
	}
	for _, k := range suppressionKeys(req) {
		if sup, err := h.d.Store.Suppressed(ctx, k); sup != nil || err != nil {
			return sup, err
		}
	}
	return nil, nil
}

// suppress puts the number on the suppression list when Skycore refused it
// for a number-level reason; E715 (campaign-specific) only with the
// request's campaign.
func (h *Handler) suppress(ctx context.Context, j *job, e *apperr.Error) {
	if !slices.Contains(h.cfg.SuppressCodes, string(e.Code)) {
		return
	}
	key := store.SuppressionKey(j.req.To, "")
	if e.Code == "E715" {
		if j.req.CampaignRef == "" {
			return
		}
		key = store.SuppressionKey(j.req.To, j.req.CampaignRef)
	}
	if err := h.d.Store.Suppress(ctx, key, string(e.Code), j.req.ID, h.cfg.SuppressTTL); err != nil {
		j.log.WarnContext(ctx, "cannot record the suppression; the next request to this number will call Skycore", "err", err)
		return
	}
	h.d.Metrics.Count(metric.SuppressionAdded)
	j.log.InfoContext(ctx, "number suppressed", "code", e.Code, "until", h.now().Add(h.cfg.SuppressTTL).UTC().Format(time.RFC3339))
}

// call sends once; on E104 it refreshes the key once and sends again. The
// call ends Margin before the invocation's deadline, so that its outcome
// can still be recorded.
func (h *Handler) call(ctx context.Context, req *sendreq.Request) (*skycore.Response, error) {
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-h.cfg.Margin))
		defer cancel()
	}
	if h.limiter != nil {
		// Wait only as long as a useful call can still start after the wait.
		wctx := ctx
		if dl, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			wctx, cancel = context.WithDeadline(ctx, dl.Add(-h.cfg.MinCall))
			defer cancel()
		}
		if err := h.limiter.Wait(wctx); err != nil {
			return nil, &apperr.Error{Code: apperr.CodeTimeout, Class: apperr.Retry, Op: "sender.rate",
				Message: "no rate-limit token before the deadline; not sent", Err: err}
		}
	}
	keys, err := h.d.Keys.Get(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := h.d.Skycore.SendSavedMMS(ctx, keys.APIKey, req)
	if !skycore.RefreshesKey(apperr.CodeOf(err)) {
		return resp, err
	}
	fresh, rerr := h.d.Keys.Refresh(ctx, keys)
	if rerr != nil || fresh.APIKey == keys.APIKey {
		return resp, err // same key: E104 stands, a config problem
	}
	h.d.Log.InfoContext(ctx, "API key refreshed after E104")
	return h.d.Skycore.SendSavedMMS(ctx, fresh.APIKey, req)
}

// accepted records Skycore's Success. It never resends: when the record
// cannot be written, the answer is handed off on the send queue, signed.
func (h *Handler) accepted(ctx context.Context, j *job, resp *skycore.Response) outcome {
	o := store.Outcome{Attempt: j.attempt, TrackingID: resp.TrackingID, To: cmp.Or(resp.To, j.req.To), From: cmp.Or(resp.From, j.req.From), MMSID: string(j.req.MMSID)}
	if resp.TrackingID == "" {
		// Skycore took it: never resent, but no postback can be joined by id.
		o.Code = string(apperr.CodeNoTrackingID)
		h.d.Metrics.Count(metric.NoTrackingID)
		j.log.WarnContext(ctx, "Skycore answered Success without TRACKINGID; accepted, not resent", "code", o.Code)
	}
	var won bool
	var m *store.Message
	err := h.persist(ctx, func(ctx context.Context) (err error) {
		won, m, err = h.d.Store.Accept(ctx, j.req.ID, j.owner, h.lease(ctx), o)
		return err
	})
	if err != nil {
		j.log.ErrorContext(ctx, "accepted by Skycore but not recorded; handing the answer off", "trackingId", resp.TrackingID, "err", err)
		h.d.Metrics.Count(metric.BookkeepingDeferred)
		return h.handOff(ctx, j, handoff{TrackingID: resp.TrackingID, Code: o.Code, To: o.To, From: o.From, First: j.first.UnixMilli()})
	}
	return h.afterAccept(ctx, j, won, m, o)
}

// recordHandoff records an acceptance handed off by an earlier delivery.
// It is bounded: past SEND_RETRY_WINDOW, or when DynamoDB refuses it for
// good, it goes to the DLQ with a metric that an alarm watches.
func (h *Handler) recordHandoff(ctx context.Context, j *job, ho *handoff) outcome {
	o := store.Outcome{Attempt: j.attempt, TrackingID: ho.TrackingID, Code: ho.Code, To: cmp.Or(ho.To, j.req.To), From: cmp.Or(ho.From, j.req.From), MMSID: string(j.req.MMSID)}
	won, m, err := h.d.Store.Accept(ctx, j.req.ID, j.owner, h.lease(ctx), o)
	if err != nil {
		if apperr.Transient(err) && h.now().Before(j.first.Add(h.cfg.RetryWindow)) {
			h.storeFailed(ctx, j, "cannot record a handed-off acceptance", err)
			return redeliver
		}
		h.d.Metrics.Count(metric.HandoffDeadLettered)
		j.log.ErrorContext(ctx, "cannot record a handed-off acceptance; moved to the DLQ", "trackingId", ho.TrackingID, "err", err, "code", apperr.CodeOf(err))
		return h.deadLetter(ctx, j, "accepted by Skycore (tracking id "+ho.TrackingID+") but not recorded: "+err.Error())
	}
	if m == nil { // the record vanished (TTL): nothing to attach to
		return ack
	}
	j.log.InfoContext(ctx, "handed-off acceptance", "trackingId", ho.TrackingID, "won", won)
	return h.afterAccept(ctx, j, won, m, o)
}

// afterAccept links the tracking id and publishes the accepted event when
// this delivery recorded it; otherwise it says what the record already says.
func (h *Handler) afterAccept(ctx context.Context, j *job, won bool, m *store.Message, o store.Outcome) outcome {
	if !won {
		switch {
		case m.State == store.StateAccepted && m.TrackingID == o.TrackingID:
			j.log.InfoContext(ctx, "acceptance already recorded", "trackingId", o.TrackingID, "by", m.AcceptedBy)
		default:
			// An earlier call of this id was accepted too: Skycore has it twice.
			// Link this tracking id as well, so its postbacks name the request.
			h.d.Metrics.Count(metric.SentTwice)
			j.log.ErrorContext(ctx, "Skycore accepted an id that was already final", "trackingId", o.TrackingID,
				"state", m.State, "recordedTrackingId", m.TrackingID, "code", "SENT_TWICE")
			if o.TrackingID != "" {
				if err := h.d.Store.Link(ctx, o.TrackingID, j.req.ID); err != nil {
					j.log.WarnContext(ctx, "cannot link the second tracking id", "trackingId", o.TrackingID, "err", err)
				}
			}
		}
		return h.pending(ctx, j, m)
	}
	h.d.Metrics.Count(metric.Accepted)
	j.log.InfoContext(ctx, "accepted", "trackingId", o.TrackingID, "code", o.Code, "class", "accepted")
	return h.publishRecorded(ctx, j, m)
}

// handOff puts the body back on the send queue with Skycore's answer,
// signed; the original is then deleted. Until the hand-off is recorded the
// claim stays, and after its lease the id is in doubt, never resent blindly.
func (h *Handler) handOff(ctx context.Context, j *job, ho handoff) outcome {
	if h.cfg.SendQueueURL == "" {
		return redeliver
	}
	keys, err := h.d.Keys.Get(ctx)
	if err == nil {
		_, err = h.d.Queue.SendMessage(context.WithoutCancel(ctx), &sqs.SendMessageInput{
			QueueUrl: aws.String(h.cfg.SendQueueURL), MessageBody: aws.String(j.rec.Body),
			MessageAttributes: handoffAttributes(handoffKey(keys.APIKey), j.rec.Body, ho),
		})
	}
	if err != nil {
		j.log.ErrorContext(ctx, "cannot hand off the acceptance; the id stays claimed and will be in doubt", "err", err)
		return redeliver
	}
	return ack
}

// finish records a terminal state other than accepted and publishes it.
func (h *Handler) finish(ctx context.Context, j *job, state string, o store.Outcome, latency time.Duration) outcome {
	o.Attempt = j.attempt // the history slot of this claim's attempt
	var won bool
	var m *store.Message
	err := h.persist(ctx, func(ctx context.Context) (err error) {
		write := h.d.Store.Reject
		if state == store.StateExpired {
			write = h.d.Store.Expire
		}
		won, m, err = write(ctx, j.req.ID, j.owner, h.lease(ctx), o)
		return err
	})
	if err != nil {
		h.storeFailed(ctx, j, "cannot record the outcome", err)
		o.Attempt = j.attempt
		if _, rerr := h.d.Store.Release(ctx, j.req.ID, j.owner, o); rerr != nil {
			j.log.WarnContext(ctx, "cannot release the claim; the next delivery waits for the lease", "err", rerr)
		}
		return redeliver
	}
	if !won {
		return h.pending(ctx, j, m)
	}
	event := store.TerminalEvent(state)
	h.d.Metrics.Count(map[string]string{delivery.Rejected: metric.Rejected, delivery.Expired: metric.Expired}[event])
	j.log.WarnContext(ctx, event, "code", o.Code, "class", "permanent", "latencyMs", latency.Milliseconds(), "err", o.Error)
	return h.publishRecorded(ctx, j, m)
}

// retry handles a transient failure: in doubt when the call may have
// reached Skycore, expired when the retry window is spent, otherwise
// released with a back-off.
func (h *Handler) retry(ctx context.Context, j *job, e *apperr.Error) outcome {
	code := string(e.Code)
	now := h.now()
	doubt := skycore.MaybeSent(e) && h.cfg.InDoubtWindow > 0
	if !doubt && !now.Before(j.first.Add(h.cfg.RetryWindow)) {
		return h.finish(ctx, j, store.StateExpired, store.Outcome{Code: code, Error: e.Message, To: j.req.To, From: j.req.From, MMSID: string(j.req.MMSID)}, 0)
	}
	// retrying goes out while the claim is still ours: no postback can
	// record the acceptance before the claim is given back, so retrying can
	// never follow an accepted event.
	ev := h.event(j.req, delivery.Retrying)
	ev.Code, ev.Error = code, e.Message
	h.emit(ctx, j.log, ev)
	h.d.Metrics.Count(metric.Retried)
	var wait time.Duration
	var applied bool
	var err error
	o := store.Outcome{Attempt: j.attempt, Code: code}
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

func (h *Handler) logRetry(ctx context.Context, j *job, e *apperr.Error) {
	if e.Class == apperr.Config {
		h.d.Metrics.Count(metric.ConfigError)
		j.log.ErrorContext(ctx, "Skycore refuses the account or deployment; messages wait in the queue", "code", e.Code, "class", "config", "err", e)
		return
	}
	j.log.InfoContext(ctx, "retrying", "code", e.Code, "class", e.Class.String(), "err", e)
}

// notClaimed handles an id that this delivery could not claim: final (a
// duplicate, maybe with an event still to publish), held elsewhere, or in
// doubt.
func (h *Handler) notClaimed(ctx context.Context, j *job, m *store.Message) outcome {
	now := h.now()
	switch {
	case m.Final():
		if !m.NeedsEvent() {
			h.d.Metrics.Count(metric.Duplicate)
			j.log.InfoContext(ctx, "duplicate delivery of a finished id; nothing sent", "state", m.State, "code", m.Code, "class", "duplicate")
		}
		return h.pending(ctx, j, m)
	case m.State == store.StateInDoubt:
		wait := m.DoubtUntil.Sub(now) + time.Second
		j.log.InfoContext(ctx, fmt.Sprintf("%s: in doubt, waiting for a postback; sent again in %s unless one comes", j.req.ID, wait.Round(time.Second)),
			"code", apperr.CodeInDoubt, "class", "indoubt")
		h.setVisibility(ctx, j, wait)
		return redeliver
	default:
		wait := m.LeaseUntil.Sub(now) + time.Second
		j.log.InfoContext(ctx, fmt.Sprintf("%s: another delivery holds it, retrying in %s", j.req.ID, wait.Round(time.Second)),
			"code", apperr.CodeBusy, "class", "retry")
		h.setVisibility(ctx, j, wait)
		return redeliver
	}
}

// pending publishes the record's pending terminal event if nobody else
// holds it; false when it must come back later.
func (h *Handler) pending(ctx context.Context, j *job, m *store.Message) outcome {
	if m == nil || !m.NeedsEvent() {
		return ack
	}
	took, cur, err := h.d.Store.TakeEvent(ctx, j.req.ID, j.owner, h.lease(ctx))
	if err != nil {
		h.storeFailed(ctx, j, "cannot take the pending event", err)
		return redeliver
	}
	if !took {
		if cur == nil || !cur.NeedsEvent() {
			return ack // published meanwhile
		}
		// Its recorder is publishing it now.
		wait := cur.LeaseUntil.Sub(h.now()) + time.Second
		j.log.InfoContext(ctx, fmt.Sprintf("%s: its %s event is being published by another delivery; checking again in %s",
			j.req.ID, cur.PendingEvent, wait.Round(time.Second)), "code", apperr.CodeBusy, "class", "retry")
		h.setVisibility(ctx, j, wait)
		return redeliver
	}
	j.log.InfoContext(ctx, "publishing a terminal event recorded earlier", "event", cur.PendingEvent)
	return h.publishRecorded(ctx, j, cur)
}

// publishRecorded publishes the record's pending event through the one
// recorded-event path; false when it stays pending for the next delivery.
func (h *Handler) publishRecorded(ctx context.Context, j *job, m *store.Message) outcome {
	deadLetter := func(ctx context.Context) error {
		if h.deadLetter(ctx, j, "expired: "+m.Code+": "+m.Error) == redeliver {
			return errors.New("dead-letter queue unavailable")
		}
		return nil
	}
	if err := h.recorded().Pending(ctx, j.log, m, j.owner, about(j.req), deadLetter); err != nil {
		return redeliver
	}
	return ack
}

// recorded is the one recorded-event path, on the handler's collaborators.
func (h *Handler) recorded() *recorded.Path {
	return &recorded.Path{Store: h.d.Store, Events: h.d.Events, Receipts: h.d.Receipts, ReceiptWindow: h.cfg.ReceiptWindow,
		Metrics: h.d.Metrics, Retry: h.persist, Now: h.now}
}

// malformed moves a body that cannot be tied to a request to the DLQ.
func (h *Handler) malformed(ctx context.Context, j *job, err error) outcome {
	h.d.Metrics.Count(metric.Malformed)
	reason := truncate(err.Error(), 1000)
	id := sendreq.PeekID([]byte(j.rec.Body))
	j.log.WarnContext(ctx, "malformed request body", "id", id, "code", apperr.CodeOf(err), "class", "permanent", "err", reason)
	if id != "" {
		ev := h.event(&sendreq.Request{ID: id}, delivery.Rejected)
		ev.Code, ev.Error = string(apperr.CodeOf(err)), reason
		h.emit(ctx, j.log, ev)
	}
	return h.deadLetter(ctx, j, reason)
}

// deadLetter moves the body to the DLQ with the reason; without a DLQ URL
// it is left to the queue's redrive policy.
func (h *Handler) deadLetter(ctx context.Context, j *job, reason string) outcome {
	if h.cfg.DLQURL == "" {
		return redeliver
	}
	_, err := h.d.Queue.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: aws.String(h.cfg.DLQURL), MessageBody: aws.String(j.rec.Body),
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"error":             {DataType: aws.String("String"), StringValue: aws.String(truncate(reason, 1000))},
			"originalMessageId": {DataType: aws.String("String"), StringValue: aws.String(j.rec.MessageId)},
		},
	})
	if err != nil {
		j.log.ErrorContext(ctx, "cannot move the body to the DLQ; it stays queued", "err", err)
		return redeliver
	}
	return ack
}

// emit publishes an event that is not recorded (retrying, malformed); a
// failure is logged, the outcome itself is not changed.
func (h *Handler) emit(ctx context.Context, log *slog.Logger, ev delivery.Event) {
	if err := h.d.Events.Publish(ctx, ev); err != nil {
		log.ErrorContext(ctx, "cannot publish the event", "event", ev.Event, "err", err)
	}
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
	if err := invocation.SetVisibility(ctx, h.d.Queue, h.cfg.SendQueueURL, j.rec.ReceiptHandle, d, MaxVisibility); err != nil {
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

// event is an event of kind about req that no record holds (retrying, a
// malformed body's rejection).
func (h *Handler) event(req *sendreq.Request, kind string) delivery.Event {
	return delivery.New(kind, about(req), h.now())
}

// about is what the request tells every event about it.
func about(req *sendreq.Request) delivery.About {
	return delivery.About{ID: req.ID, To: req.To, From: req.From, MMSID: string(req.MMSID)}
}

// rejection is the outcome of a permanent refusal: the first code, and
// every violated field in error.
func rejection(req *sendreq.Request, cause error) store.Outcome {
	var msgs []string
	for _, e := range apperr.All(cause) {
		if e.Field != "" {
			msgs = append(msgs, string(e.Code)+" "+e.Field+": "+e.Message)
		} else {
			msgs = append(msgs, string(e.Code)+": "+e.Message)
		}
	}
	o := store.Outcome{Code: string(apperr.CodeOf(cause)), Error: strings.Join(msgs, "; "), To: req.To, From: req.From, MMSID: string(req.MMSID)}
	if o.Error == "" {
		o.Error = cause.Error()
	}
	return o
}

// sentAt is when SQS first received the message (the retry window's start).
func sentAt(rec events.SQSMessage, def time.Time) time.Time {
	if ms, err := strconv.ParseInt(rec.Attributes["SentTimestamp"], 10, 64); err == nil && ms > 0 {
		return time.UnixMilli(ms)
	}
	return def
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
