// Package sender is the send-mms function: an SQS batch of send requests
// (contract §1) → idempotent sendSavedMMS calls → delivery events (§2).
package sender

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/emf"
	"github.com/mmsgate/mmsgate/pkg/secret"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// AcceptedAttr marks a message re-enqueued after Skycore accepted it but
// the bookkeeping could not be written: it is finished, never resent.
const AcceptedAttr = "mmsgate-accepted-tracking-id"

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
		Claim(ctx context.Context, id, owner string, lease time.Time) (bool, *store.Message, error)
		Accept(ctx context.Context, id string, o store.Outcome) error
		Reject(ctx context.Context, id string, o store.Outcome) error
		Release(ctx context.Context, id, owner, code string) error
		Link(ctx context.Context, trackingID, id string) error
		EventSent(ctx context.Context, id string) error
		ReleaseEvent(ctx context.Context, id string) error
	}
	publisher interface {
		Publish(ctx context.Context, e delivery.Event) error
	}
	queue interface {
		ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
		SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	}
)

// Config is the handler's part of contract §5.
type Config struct {
	Policy        sendreq.Policy
	Concurrency   int           // SEND_CONCURRENCY
	RatePerSecond float64       // SEND_RATE_PER_SECOND; 0 is off
	CallTimeout   time.Duration // SKYCORE_TIMEOUT
	SendQueueURL  string        // SEND_QUEUE_URL
	DLQURL        string        // DEAD_LETTER_QUEUE_URL
	// Margin is kept free at the end of an invocation for bookkeeping.
	Margin time.Duration
	// BaseBackoff is the first retry's visibility delay, doubled per receive.
	BaseBackoff time.Duration
	// MaxBackoff caps it (SQS allows 12 h; we wait at most 15 min).
	MaxBackoff time.Duration
}

// Deps are the handler's collaborators, built once in main.
type Deps struct {
	Keys    keySource
	Skycore api
	Store   records
	Events  publisher
	Queue   queue
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

// NewHandler applies defaults to cfg.
func NewHandler(cfg Config, d Deps) *Handler {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 10
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = skycore.DefaultTimeout
	}
	if cfg.Margin <= 0 {
		cfg.Margin = 2 * time.Second
	}
	if cfg.BaseBackoff <= 0 {
		cfg.BaseBackoff = 5 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 15 * time.Minute
	}
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
	if _, err := h.d.Keys.Get(ctx); err != nil {
		h.d.Log.ErrorContext(ctx, "cannot read the Skycore secret; the whole batch will be retried", "err", err, "code", apperr.CodeOf(err))
		h.d.Metrics.Count("SecretUnavailable")
		return events.SQSEventResponse{}, fmt.Errorf("send-mms: secret unavailable: %w", err)
	}
	var mu sync.Mutex
	var failures []events.SQSBatchItemFailure
	fail := func(id string) {
		mu.Lock()
		failures = append(failures, events.SQSBatchItemFailure{ItemIdentifier: id})
		mu.Unlock()
	}
	g := new(errgroup.Group)
	g.SetLimit(h.cfg.Concurrency)
	for _, rec := range ev.Records {
		if !h.timeLeft(ctx) {
			// Not started: it comes back after its visibility timeout.
			h.d.Log.WarnContext(ctx, "deadline near; record left for redelivery", "messageId", rec.MessageId)
			fail(rec.MessageId)
			continue
		}
		g.Go(func() error {
			if !h.timeLeft(ctx) {
				fail(rec.MessageId)
				return nil
			}
			if !h.process(ctx, rec) {
				fail(rec.MessageId)
			}
			return nil
		})
	}
	g.Wait()
	return events.SQSEventResponse{BatchItemFailures: failures}, nil
}

// timeLeft reports whether a Skycore call plus the margin still fit.
func (h *Handler) timeLeft(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) >= h.cfg.CallTimeout+h.cfg.Margin
}

// process handles one record; false means "report it as a failure".
func (h *Handler) process(ctx context.Context, rec events.SQSMessage) bool {
	log := h.d.Log.With("messageId", rec.MessageId)
	req, err := sendreq.Decode([]byte(rec.Body))
	if err != nil {
		return h.malformed(ctx, log, rec, err)
	}
	log = log.With("id", req.ID)
	if tid := attr(rec, AcceptedAttr); tid != "" {
		return h.finishAccepted(ctx, log, rec, req, &skycore.Response{TrackingID: tid, To: attr(rec, AcceptedAttr+"-to"), From: attr(rec, AcceptedAttr+"-from")})
	}
	req.ApplyDefaults(h.cfg.Policy)
	verr := req.Validate(h.cfg.Policy)
	if verr != nil && !sendreq.ValidID(req.ID) {
		// No usable id to record it under: like a malformed body, it goes
		// to the DLQ with the reason rather than vanish.
		return h.malformed(ctx, log, rec, verr)
	}

	owner := rec.MessageId + "/" + invocationID(ctx)
	claimed, existing, err := h.d.Store.Claim(ctx, req.ID, owner, h.lease(ctx))
	if err != nil {
		log.ErrorContext(ctx, "cannot claim the request id", "err", err, "code", apperr.CodeOf(err))
		h.d.Metrics.Count("StoreError")
		h.backoff(ctx, log, rec, nil)
		return false
	}
	if !claimed {
		return h.notClaimed(ctx, log, rec, req, existing)
	}

	if verr != nil {
		return h.reject(ctx, log, req, verr, 0)
	}
	for _, w := range req.Warnings() {
		log.WarnContext(ctx, w)
	}
	start := h.now()
	resp, err := h.call(ctx, req)
	latency := h.now().Sub(start)
	h.d.Metrics.Put("SkycoreLatency", emf.Milliseconds, float64(latency.Milliseconds()))
	if err == nil {
		return h.finishAccepted(ctx, log.With("latencyMs", latency.Milliseconds()), rec, req, resp)
	}
	e, ok := apperr.As(err)
	if !ok {
		e = &apperr.Error{Code: apperr.CodeInternal, Class: apperr.Retry, Err: err}
	}
	if e.Class == apperr.Permanent {
		if !skycore.Known(e) {
			log.ErrorContext(ctx, "Skycore answered with an unknown code; treated as permanent", "code", e.Code, "err", e)
			h.d.Metrics.Count("UnknownCode")
		}
		return h.reject(ctx, log, req, e, latency)
	}
	return h.retry(ctx, log, rec, req, owner, e, latency)
}

// call sends once; on E104 it refreshes the key once and sends again.
func (h *Handler) call(ctx context.Context, req *sendreq.Request) (*skycore.Response, error) {
	if h.limiter != nil {
		// Wait only as long as a call can still start after the wait.
		wctx := ctx
		if dl, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			wctx, cancel = context.WithDeadline(ctx, dl.Add(-(h.cfg.CallTimeout + h.cfg.Margin)))
			defer cancel()
		}
		if err := h.limiter.Wait(wctx); err != nil {
			return nil, &apperr.Error{Code: apperr.CodeTimeout, Class: apperr.Retry, Op: "sender.rate",
				Message: "no rate-limit token before the deadline; left for redelivery", Err: err}
		}
	}
	keys, err := h.d.Keys.Get(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := h.d.Skycore.SendSavedMMS(ctx, keys.APIKey, req)
	if apperr.CodeOf(err) != "E104" {
		return resp, err
	}
	fresh, rerr := h.d.Keys.Refresh(ctx, keys)
	if rerr != nil || fresh.APIKey == keys.APIKey {
		return resp, err // same key: E104 stands, a config problem
	}
	h.d.Log.InfoContext(ctx, "API key refreshed after E104")
	return h.d.Skycore.SendSavedMMS(ctx, fresh.APIKey, req)
}

// finishAccepted writes the bookkeeping for an accepted send. It never
// resends: if the records cannot be written, the message is re-enqueued
// marked as accepted.
func (h *Handler) finishAccepted(ctx context.Context, log *slog.Logger, rec events.SQSMessage, req *sendreq.Request, resp *skycore.Response) bool {
	o := store.Outcome{TrackingID: resp.TrackingID, To: nonEmpty(resp.To, req.To), From: nonEmpty(resp.From, req.From), MMSID: string(req.MMSID)}
	err := h.persist(ctx, func(ctx context.Context) error {
		// Two items, independent: written side by side to halve the wait.
		var g errgroup.Group
		g.Go(func() error { return h.d.Store.Link(ctx, resp.TrackingID, req.ID) })
		g.Go(func() error { return h.d.Store.Accept(ctx, req.ID, o) })
		return g.Wait()
	})
	if err != nil {
		log.ErrorContext(ctx, "accepted by Skycore but not recorded; re-enqueueing the bookkeeping", "trackingId", resp.TrackingID, "err", err)
		h.d.Metrics.Count("BookkeepingDeferred")
		return h.requeueAccepted(ctx, log, rec, resp)
	}
	h.d.Metrics.Count("Accepted")
	log.InfoContext(ctx, "accepted", "trackingId", resp.TrackingID, "code", "", "class", "accepted")
	return h.publishPending(ctx, log, req.ID, acceptedEvent(req, o, h.now()))
}

// requeueAccepted puts the body back on the send queue with the tracking
// id as an attribute; the next delivery records the acceptance and sends
// nothing.
func (h *Handler) requeueAccepted(ctx context.Context, log *slog.Logger, rec events.SQSMessage, resp *skycore.Response) bool {
	if h.cfg.SendQueueURL == "" {
		return false
	}
	str := func(v string) sqstypes.MessageAttributeValue {
		return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(nonEmpty(v, "-"))}
	}
	_, err := h.d.Queue.SendMessage(context.WithoutCancel(ctx), &sqs.SendMessageInput{
		QueueUrl: aws.String(h.cfg.SendQueueURL), MessageBody: aws.String(rec.Body), DelaySeconds: 5,
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			AcceptedAttr: str(resp.TrackingID), AcceptedAttr + "-to": str(resp.To), AcceptedAttr + "-from": str(resp.From),
		},
	})
	if err != nil {
		log.ErrorContext(ctx, "cannot re-enqueue the accepted message; it will be redelivered and may be sent again", "err", err)
		return false
	}
	return true
}

// reject records a permanent rejection and publishes it.
func (h *Handler) reject(ctx context.Context, log *slog.Logger, req *sendreq.Request, cause error, latency time.Duration) bool {
	ev := rejectedEvent(req, cause)
	err := h.persist(ctx, func(ctx context.Context) error {
		return h.d.Store.Reject(ctx, req.ID, store.Outcome{Code: ev.Code, Error: ev.Error, To: req.To, From: req.From, MMSID: string(req.MMSID)})
	})
	if err != nil {
		log.ErrorContext(ctx, "cannot record the rejection; will retry", "err", err)
		return false
	}
	h.d.Metrics.Count("Rejected")
	log.WarnContext(ctx, "rejected", "code", ev.Code, "class", "permanent", "latencyMs", latency.Milliseconds(), "err", ev.Error)
	return h.publishPending(ctx, log, req.ID, ev)
}

// retry releases the claim, publishes retrying and sets the back-off.
func (h *Handler) retry(ctx context.Context, log *slog.Logger, rec events.SQSMessage, req *sendreq.Request, owner string, e *apperr.Error, latency time.Duration) bool {
	if err := h.d.Store.Release(ctx, req.ID, owner, string(e.Code)); err != nil {
		log.WarnContext(ctx, "cannot release the claim; the next delivery waits for the lease", "err", err)
	}
	ev := baseEvent(req, delivery.Retrying, h.now())
	ev.Code, ev.Error = string(e.Code), e.Message
	h.emit(ctx, log, ev)
	h.d.Metrics.Count("Retried")
	if e.Class == apperr.Config {
		h.d.Metrics.Count("ConfigError")
		log.ErrorContext(ctx, "Skycore refuses the account or deployment; messages wait in the queue", "code", e.Code, "class", "config", "latencyMs", latency.Milliseconds(), "err", e)
	} else {
		log.InfoContext(ctx, "retrying", "code", e.Code, "class", "retry", "latencyMs", latency.Milliseconds(), "err", e)
	}
	h.backoff(ctx, log, rec, e)
	return false
}

// notClaimed handles a duplicate delivery (final record) or an id being
// sent elsewhere right now.
func (h *Handler) notClaimed(ctx context.Context, log *slog.Logger, rec events.SQSMessage, req *sendreq.Request, m *store.Message) bool {
	if !m.Final() {
		log.InfoContext(ctx, "id in progress elsewhere; retrying later", "code", "BUSY", "class", "retry")
		wait := time.Until(m.LeaseUntil) + time.Second
		h.setVisibility(ctx, log, rec, max(wait, time.Second))
		return false
	}
	if m.PendingEvent != "" && m.LeaseUntil.After(h.now()) {
		// The delivery that recorded the outcome is publishing it now.
		log.InfoContext(ctx, "outcome being published by another delivery; retrying later", "code", "BUSY", "class", "retry")
		h.setVisibility(ctx, log, rec, max(time.Until(m.LeaseUntil)+time.Second, time.Second))
		return false
	}
	h.d.Metrics.Count("Duplicate")
	log.InfoContext(ctx, "duplicate delivery of a finished id; nothing sent", "state", m.State, "code", m.Code, "class", "duplicate")
	if m.PendingEvent == "" {
		return true
	}
	// The earlier delivery recorded the outcome but not its event.
	ev := baseEvent(req, m.PendingEvent, h.now())
	ev.TrackingID, ev.Code, ev.Error, ev.To, ev.From = m.TrackingID, m.Code, m.Error, nonEmpty(m.To, req.To), nonEmpty(m.From, req.From)
	return h.publishPending(ctx, log, req.ID, ev)
}

// publishPending publishes an event recorded as pending and clears it; on
// failure the message comes back and the duplicate path publishes it.
func (h *Handler) publishPending(ctx context.Context, log *slog.Logger, id string, ev delivery.Event) bool {
	if err := h.d.Events.Publish(ctx, ev); err != nil {
		log.ErrorContext(ctx, "cannot publish the event; it stays pending for the next delivery", "event", ev.Event, "err", err)
		if rerr := h.d.Store.ReleaseEvent(ctx, id); rerr != nil {
			log.WarnContext(ctx, "cannot release the pending event; the next delivery waits for the lease", "err", rerr)
		}
		return false
	}
	if err := h.d.Store.EventSent(ctx, id); err != nil {
		// Harmless: a later duplicate delivery would publish it once more.
		log.WarnContext(ctx, "event published but not marked", "err", err)
	}
	return true
}

// malformed moves a body that cannot be a request to the DLQ at once.
func (h *Handler) malformed(ctx context.Context, log *slog.Logger, rec events.SQSMessage, err error) bool {
	h.d.Metrics.Count("Malformed")
	reason := err.Error()
	if len(reason) > 1000 {
		reason = reason[:1000]
	}
	id := readableID(rec.Body)
	log.WarnContext(ctx, "malformed request body", "id", id, "code", apperr.CodeOf(err), "class", "permanent", "err", reason)
	if id != "" {
		ev := delivery.Event{ID: id, Event: delivery.Rejected, Code: string(apperr.CodeOf(err)), Error: reason}
		ev.OccurredAt = delivery.Stamp(h.now())
		h.emit(ctx, log, ev)
	}
	if h.cfg.DLQURL == "" {
		return false // the queue's redrive policy moves it
	}
	_, serr := h.d.Queue.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: aws.String(h.cfg.DLQURL), MessageBody: aws.String(rec.Body),
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"error":             {DataType: aws.String("String"), StringValue: aws.String(reason)},
			"originalMessageId": {DataType: aws.String("String"), StringValue: aws.String(rec.MessageId)},
		},
	})
	if serr != nil {
		log.ErrorContext(ctx, "cannot move the malformed body to the DLQ; it stays queued", "err", serr)
		return false
	}
	return true
}

// emit publishes an event that is not pending in the table (retrying,
// malformed); a failure is logged, the outcome itself is not changed.
func (h *Handler) emit(ctx context.Context, log *slog.Logger, ev delivery.Event) {
	if err := h.d.Events.Publish(ctx, ev); err != nil {
		log.ErrorContext(ctx, "cannot publish the event", "event", ev.Event, "err", err)
	}
}

// persist retries a bookkeeping write with back-off until the margin at the
// end of the invocation.
func (h *Handler) persist(ctx context.Context, fn func(context.Context) error) error {
	wait := 50 * time.Millisecond
	for {
		err := fn(ctx)
		if err == nil || apperr.ClassOf(err) != apperr.Retry {
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

// backoff sets the message's visibility: exponential in the receive count
// with jitter, at least E106's seconds, the cap for config errors and E120.
func (h *Handler) backoff(ctx context.Context, log *slog.Logger, rec events.SQSMessage, e *apperr.Error) {
	n, _ := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
	h.setVisibility(ctx, log, rec, Backoff(n, e, h.cfg.BaseBackoff, h.cfg.MaxBackoff))
}

// Backoff is the visibility delay for the n-th receive of a message that
// failed with e (nil: an infrastructure failure).
func Backoff(n int, e *apperr.Error, base, cap time.Duration) time.Duration {
	if e != nil && (e.Class == apperr.Config || e.Code == "E120") {
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

func (h *Handler) setVisibility(ctx context.Context, log *slog.Logger, rec events.SQSMessage, d time.Duration) {
	url := h.cfg.SendQueueURL
	if url == "" {
		url = QueueURL(rec.EventSourceARN)
	}
	if url == "" || rec.ReceiptHandle == "" {
		return
	}
	secs := int32((d + time.Second - 1) / time.Second)
	_, err := h.d.Queue.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(url), ReceiptHandle: aws.String(rec.ReceiptHandle), VisibilityTimeout: min(secs, 43200),
	})
	if err != nil {
		log.WarnContext(ctx, "cannot set the retry back-off; the queue's visibility timeout applies", "err", err)
	}
}

// QueueURL derives a queue URL from its ARN (arn:aws:sqs:region:acct:name).
func QueueURL(arn string) string {
	p := strings.Split(arn, ":")
	if len(p) != 6 || p[2] != "sqs" {
		return ""
	}
	return fmt.Sprintf("https://sqs.%s.amazonaws.com/%s/%s", p[3], p[4], p[5])
}

// lease ends with the invocation's deadline: after it, a redelivery may
// take the id over.
func (h *Handler) lease(ctx context.Context) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		return dl
	}
	return h.now().Add(15 * time.Minute)
}

func baseEvent(req *sendreq.Request, kind string, at time.Time) delivery.Event {
	ev := delivery.Event{ID: req.ID, Event: kind, To: req.To, From: req.From, OccurredAt: delivery.Stamp(at)}
	if v, err := strconv.ParseInt(string(req.MMSID), 10, 64); err == nil {
		ev.MMSID = &v
	}
	return ev
}

func acceptedEvent(req *sendreq.Request, o store.Outcome, at time.Time) delivery.Event {
	ev := baseEvent(req, delivery.Accepted, at)
	ev.TrackingID, ev.To, ev.From = o.TrackingID, o.To, o.From
	return ev
}

func rejectedEvent(req *sendreq.Request, cause error) delivery.Event {
	ev := baseEvent(req, delivery.Rejected, time.Now())
	ev.Code = string(apperr.CodeOf(cause))
	var msgs []string
	for _, e := range apperr.All(cause) {
		if e.Field != "" {
			msgs = append(msgs, string(e.Code)+" "+e.Field+": "+e.Message)
		} else {
			msgs = append(msgs, string(e.Code)+": "+e.Message)
		}
	}
	ev.Error = strings.Join(msgs, "; ")
	if ev.Error == "" {
		ev.Error = cause.Error()
	}
	return ev
}

// readableID is the body's id when it is a non-empty string, valid or not
// (an over-long id still tells the application which request failed).
func readableID(body string) string {
	var v struct {
		ID any `json:"id"`
	}
	if json.Unmarshal([]byte(body), &v) != nil {
		return ""
	}
	id, _ := v.ID.(string)
	return id
}

func attr(rec events.SQSMessage, name string) string {
	if a, ok := rec.MessageAttributes[name]; ok && a.StringValue != nil && *a.StringValue != "-" {
		return *a.StringValue
	}
	return ""
}

func invocationID(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		return lc.AwsRequestID
	}
	return "local"
}

func nonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
