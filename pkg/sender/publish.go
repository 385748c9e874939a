package sender

// Recording an outcome and publishing its event (through the one
// recorded-event path, pkg/recorded), and moving bodies to the DLQ.

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/metric"
	"github.com/mmsgate/mmsgate/pkg/recorded"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
	"github.com/mmsgate/mmsgate/pkg/throttle"
)

// accepted records Skycore's Success. It never resends: when the record
// cannot be written, the answer is handed off on the send queue, signed.
func (h *Handler) accepted(ctx context.Context, j *job, resp *skycore.Response) outcome {
	// to is the request's, as the application wrote it (Skycore answers in
	// its own form); Skycore's is logged when it names another number.
	o := store.Outcome{Attempt: j.attempt, TrackingID: resp.TrackingID, To: j.req.To, From: cmp.Or(resp.From, j.req.From), MMSID: string(j.req.MMSID),
		Warnings: j.warnings}
	if resp.To != "" && digits(resp.To) != digits(j.req.To) {
		j.log.WarnContext(ctx, "Skycore's answer names another number than the request", "skycoreTo", truncate(resp.To, 64))
	}
	switch {
	case resp.TrackingID == "":
		// Skycore took it: never resent, but no postback can be joined by id.
		o.Code = string(apperr.CodeNoTrackingID)
		h.d.Metrics.Count(metric.NoTrackingID)
		j.log.WarnContext(ctx, "Skycore answered Success without TRACKINGID; accepted, not resent", "code", o.Code)
	case !store.Keyable(resp.TrackingID):
		// Too long to key: linking it would fail for good and leave the
		// accepted event pending. Recorded as if Skycore gave none (postbacks
		// join through CLIENT_REFERENCE); only its length and hash are kept.
		o.TrackingID, o.Code = "", string(apperr.CodeNoTrackingID)
		h.d.Metrics.Count(metric.UnkeyableTrackingID)
		j.log.WarnContext(ctx, "Skycore answered Success with a TRACKINGID too long to key; accepted without it, not resent",
			"code", o.Code, "trackingIdBytes", len(resp.TrackingID), "trackingIdSha256", shortHash(resp.TrackingID))
	}
	var won bool
	var m *store.Message
	err := h.persist(ctx, func(ctx context.Context) (err error) {
		won, m, err = h.d.Store.Accept(ctx, j.req.ID, j.owner, h.lease(ctx), o)
		return err
	})
	if err != nil {
		j.log.ErrorContext(ctx, "accepted by Skycore but not recorded; handing the answer off", "trackingId", o.TrackingID, "err", err)
		h.d.Metrics.Count(metric.BookkeepingDeferred)
		return h.handOff(ctx, j, handoff{TrackingID: o.TrackingID, Code: o.Code, To: o.To, From: o.From, First: j.first.UnixMilli()})
	}
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
				if err := h.d.Store.Link(ctx, o.TrackingID, j.req.ID, metadata(j.req)); err != nil {
					j.log.WarnContext(ctx, "cannot link the second tracking id", "trackingId", o.TrackingID, "err", err)
				}
			}
		}
		return h.pending(ctx, j, m)
	}
	h.d.Metrics.Count(metric.Accepted)
	for _, w := range m.Warnings {
		h.d.Metrics.Count(metric.RequestWarning, "Code", w)
	}
	j.log.InfoContext(ctx, "accepted", "trackingId", o.TrackingID, "code", o.Code, "class", "accepted", "warnings", m.Warnings)
	return h.publishRecorded(ctx, j, m)
}

// finish records a terminal state other than accepted and publishes it.
func (h *Handler) finish(ctx context.Context, j *job, state string, o store.Outcome, _ time.Duration) outcome {
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
	// latencyMs, when there was a call, is already on j.log.
	j.log.WarnContext(ctx, event, "code", o.Code, "class", "permanent", "err", o.Error)
	return h.publishRecorded(ctx, j, m)
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
	// The recorded path names the id on each of its lines: its logger must
	// not carry it already.
	log := h.d.Log.With("messageId", j.rec.MessageId)
	if err := h.recorded().Pending(ctx, log, m, j.owner, about(j.req), deadLetter); err != nil {
		return redeliver
	}
	return ack
}

// recorded is the one recorded-event path, on the handler's collaborators.
func (h *Handler) recorded() *recorded.Path {
	return &recorded.Path{Store: h.d.Store, Events: h.d.Events, Receipts: h.d.Receipts, ReceiptWindow: h.cfg.ReceiptWindow,
		Metrics: h.d.Metrics, Retry: h.persist, Now: h.now, PublishTimeout: h.cfg.Margin}
}

// malformed moves a body that cannot be tied to a request (no usable id)
// to the DLQ. It publishes nothing: with no record to de-duplicate
// against, every redelivery or redrive would publish again, and an
// unusable id names no request the application can have sent.
func (h *Handler) malformed(ctx context.Context, j *job, err error) outcome {
	h.d.Metrics.Count(metric.Malformed)
	reason := truncate(err.Error(), 1000)
	id := sendreq.PeekID([]byte(j.rec.Body))
	j.log.WarnContext(ctx, "malformed request body", "id", strings.ToValidUTF8(truncate(id, 100), "?"), "code", apperr.CodeOf(err), "class", "permanent", "err", reason)
	return h.deadLetter(ctx, j, reason)
}

// deadLetter moves the body to the DLQ with the reason; without a DLQ URL
// it is left to the queue's redrive policy.
func (h *Handler) deadLetter(ctx context.Context, j *job, reason string) outcome {
	dlq := h.dlqOf(j)
	if dlq == "" {
		return redeliver
	}
	in := &sqs.SendMessageInput{
		QueueUrl: aws.String(dlq), MessageBody: aws.String(j.rec.Body),
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"error":             {DataType: aws.String("String"), StringValue: aws.String(truncate(reason, 1000))},
			"originalMessageId": {DataType: aws.String("String"), StringValue: aws.String(truncate(j.rec.MessageId, maxMessageIDBytes))},
		},
	}
	keepHandoff(j.rec, in.MessageAttributes)
	fitDeadLetter(j.rec.Body, in.MessageAttributes)
	_, err := h.d.Queue.SendMessage(ctx, in)
	if err != nil {
		j.log.ErrorContext(ctx, "cannot move the body to the DLQ; it stays queued", "err", err)
		return redeliver
	}
	return ack
}

// dlqOf is the dead-letter queue of j's lane: a bulk body goes to the bulk
// DLQ (when there is one), where a redrive sends it back to the bulk queue.
func (h *Handler) dlqOf(j *job) string {
	if h.cfg.BulkDLQURL != "" && h.laneOf(j) == throttle.Bulk {
		return h.cfg.BulkDLQURL
	}
	return h.cfg.DLQURL
}

// event is an event of kind about req that no record holds (retrying, a
// malformed body's rejection).
func (h *Handler) event(req *sendreq.Request, kind string) delivery.Event {
	return delivery.New(kind, about(req), h.now())
}

// about is what the request tells every event about it.
func about(req *sendreq.Request) delivery.About {
	return delivery.About{ID: req.ID, To: req.To, From: req.From, MMSID: string(req.MMSID), Metadata: metadata(req)}
}

// metadata is the request's metadata when it keeps its limits: a refused
// object is never stored nor echoed.
func metadata(req *sendreq.Request) map[string]string {
	if len(req.Metadata) == 0 || !sendreq.MetadataOK(req.Metadata) {
		return nil
	}
	return req.Metadata
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

// digits keeps the digits of a phone number (+1 774… and 1774… are one).
func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// shortHash names a value too long to log: the first 8 bytes of its
// SHA-256, in hex.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
