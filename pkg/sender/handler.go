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
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
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
	// records is the store as the handler's steps use it, one narrow
	// interface per step.
	records interface {
		claims
		outcomes
		pendingEvents
		suppressions
		scheduling
	}
	// claims: the fan-out's claim of an id, and its release.
	claims interface {
		Claim(ctx context.Context, id string, c store.Claim) (bool, *store.Message, error)
		Release(ctx context.Context, id, owner string, o store.Outcome) (bool, error)
		Doubt(ctx context.Context, id, owner string, until time.Time, o store.Outcome) (bool, error)
	}
	// outcomes: the terminal states a claim ends in.
	outcomes interface {
		Accept(ctx context.Context, id, owner string, hold time.Time, o store.Outcome) (bool, *store.Message, error)
		Reject(ctx context.Context, id, owner string, hold time.Time, o store.Outcome) (bool, *store.Message, error)
		Expire(ctx context.Context, id, owner string, hold time.Time, o store.Outcome) (bool, *store.Message, error)
	}
	// pendingEvents: publication of a recorded event (with pkg/recorded).
	pendingEvents interface {
		Link(ctx context.Context, trackingID, id string, md map[string]string) error
		TakeEvent(ctx context.Context, id, owner string, hold time.Time) (bool, *store.Message, error)
		EventSent(ctx context.Context, id string) error
		ReleaseEvent(ctx context.Context, id, owner string) error
	}
	// suppressions: the suppression list.
	suppressions interface {
		SuppressedFor(ctx context.Context, to, from, campaign string) (*store.Suppression, error)
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
		Alone(ctx context.Context) context.Context
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
	// BulkDLQURL is BULK_DEAD_LETTER_QUEUE_URL: where a bulk record's body
	// is moved ("": DLQURL), so that it is redriven to its own lane.
	BulkDLQURL string
	// BulkSendQueueURL is BULK_SEND_QUEUE_URL: a record from that queue is
	// backed off and handed off on it, so it keeps its lane.
	BulkSendQueueURL string
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
	// blame refines the class of E100 and E111 answers (docs/codes.md,
	// "Who is at fault"): one per instance, its E100 burst is this
	// instance's.
	blame *skycore.Blame
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
	cfg.Policy.Scheduling = true // sendAt, expiresAt and cancel are honoured (schedule.go)
	h := &Handler{cfg: cfg, d: d, now: time.Now}
	h.blame = skycore.NewBlame(cfg.Policy.DefaultFrom, func() time.Time { return h.now() })
	if cfg.RatePerSecond > 0 {
		h.limiter = rate.NewLimiter(rate.Limit(cfg.RatePerSecond), max(1, int(cfg.RatePerSecond)))
	}
	if h.d.Log == nil {
		h.d.Log = slog.New(slog.DiscardHandler)
	}
	return h
}

// process handles one record.
func (h *Handler) process(ctx context.Context, hk []byte, rec events.SQSMessage) outcome {
	j := &job{rec: rec, owner: rec.MessageId + "/" + invocation.ID(ctx), first: sentAt(rec, h.now()),
		log: h.d.Log.With("messageId", rec.MessageId)}
	req, verr := sendreq.Decode([]byte(rec.Body))
	unreadable := false
	if req == nil {
		// Too deep for the decoder, but its id is readable: rejected through
		// its record (once), like any other invalid request.
		if id := sendreq.PeekID([]byte(rec.Body)); sendreq.ValidID(id) {
			req, unreadable = &sendreq.Request{ID: id}, true
		}
	}
	if req == nil || !sendreq.ValidID(req.ID) {
		if verr == nil {
			req.ApplyDefaults(h.cfg.Policy)   // or the reason lists the defaults' fields as missing
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
	if err := req.Validate(h.cfg.Policy); err != nil && !unreadable {
		// Every violated field, the decoding's first (its code leads).
		verr = errors.Join(verr, err)
	}
	if err := checkBodySize(rec.Body); err != nil {
		verr = errors.Join(verr, err)
	}
	if req.Cancel || cancelMalformed(verr) {
		return h.cancel(ctx, j, verr)
	}
	if ho != nil && verr == nil {
		j.first = ho.first()
		return h.recordHandoff(ctx, j, ho)
	}
	if sendAt, ahead := h.ahead(j); ahead && verr == nil {
		return h.scheduleAhead(ctx, j, sendAt)
	} else if sendAt.After(j.first) {
		j.first = sendAt // SEND_RETRY_WINDOW counts from sendAt
	}

	claimed, m, err := h.d.Store.Claim(ctx, req.ID, store.Claim{Owner: j.owner, Lease: h.lease(ctx), First: j.first, InDoubt: h.cfg.InDoubtWindow,
		Metadata: metadata(req)})
	if err != nil {
		h.storeFailed(ctx, j, "cannot claim the request id", err)
		return redeliver
	}
	if !claimed && m.State == store.StateScheduled {
		var done bool
		var o outcome
		if claimed, m, done, o = h.due(ctx, j, m); done {
			return o
		}
	}
	if !claimed {
		return h.notClaimed(ctx, j, m)
	}
	if !m.First.IsZero() {
		j.first = m.First
	}
	req.Metadata = m.Metadata // the id's first claim's: every event echoes that one
	j.attempt = m.Attempts
	j.lastRetrying = skycore.RetryNote{Code: apperr.Code(m.RetryCode), At: m.RetryAt}
	if verr != nil {
		return h.finish(ctx, j, store.StateRejected, rejection(j.req, verr), 0)
	}
	if m.Attempts > 1 && !h.now().Before(j.first.Add(h.cfg.RetryWindow)) {
		// Tried before, and the window is spent (it may have waited in
		// doubt past it, or come back from the DLQ): the last word is
		// expired, never one more call.
		o := store.Outcome{Code: m.Code, Error: "still failing when SEND_RETRY_WINDOW ran out", To: req.To, From: req.From, MMSID: string(req.MMSID)}
		if m.Code == "" {
			// Its last call's outcome is unknown (its sender died, or its
			// acceptance was never recorded): not sent again.
			o.Code, o.Error = string(apperr.CodeInDoubt), "an earlier call's outcome is unknown and SEND_RETRY_WINDOW ran out; not sent again"
		}
		return h.finish(ctx, j, store.StateExpired, o, 0)
	}
	if h.expiresAtPassed(j) {
		return h.expireAt(ctx, j) // no call at or after expiresAt
	}
	if sup, err := h.suppressed(ctx, req); err != nil {
		h.storeFailed(ctx, j, "cannot read the suppression list", err)
		if _, rerr := h.d.Store.Release(ctx, req.ID, j.owner, store.Outcome{Attempt: j.attempt, Code: string(apperr.CodeOf(err))}); rerr != nil {
			j.log.WarnContext(ctx, "cannot release the claim; the next delivery waits for the lease", "err", rerr)
		}
		return redeliver
	} else if sup != nil {
		h.d.Metrics.Count(metric.Suppressed)
		return h.finish(ctx, j, store.StateRejected, store.Outcome{Code: sup.Code, Suppressed: true, Error: sup.Explain(),
			To: req.To, From: req.From, MMSID: string(req.MMSID)}, 0)
	}
	j.warnings = req.Warnings()
	for _, w := range j.warnings {
		j.log.WarnContext(ctx, "advice not followed: "+sendreq.WarningText(w), "code", w, "class", "warning")
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
	e = h.refine(ctx, j, e)
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
