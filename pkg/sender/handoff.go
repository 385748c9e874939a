package sender

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/metric"
	"github.com/mmsgate/mmsgate/pkg/store"
	"github.com/mmsgate/mmsgate/pkg/throttle"
)

// The hand-off: Skycore accepted a request but DynamoDB would not record
// it before the deadline. The body goes back on the send queue with what
// Skycore answered, signed with a key derived from the API key, which the
// applications that write to the queue cannot read. A message without a
// valid signature is an ordinary request: no attribute an application can
// write changes what happens to it (docs/request.md).
const (
	HandoffAttr    = "mmsgate-handoff"
	HandoffMACAttr = "mmsgate-handoff-mac"
)

// handoff is what the signed attribute carries.
type handoff struct {
	TrackingID string `json:"t"`
	Code       string `json:"c,omitempty"` // NO_TRACKINGID when Skycore gave none
	To         string `json:"to,omitempty"`
	From       string `json:"from,omitempty"`
	First      int64  `json:"first"` // ms: when the request was first enqueued
}

// handoffKey derives the signing key from the API key, so that no new
// secret is needed. A key rotated in between invalidates hand-offs in
// flight: those are then handled as in-doubt requests (waiting for a
// postback), never trusted.
func handoffKey(apiKey string) []byte {
	m := hmac.New(sha256.New, []byte(apiKey))
	m.Write([]byte("mmsgate hand-off v1"))
	return m.Sum(nil)
}

func handoffMAC(key []byte, body, payload string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(body))
	m.Write([]byte{0})
	m.Write([]byte(payload))
	return hex.EncodeToString(m.Sum(nil))
}

// handoffAttributes signs h for body.
func handoffAttributes(key []byte, body string, h handoff) map[string]sqstypes.MessageAttributeValue {
	payload, _ := json.Marshal(h) // strings and a number: cannot fail
	str := func(v string) sqstypes.MessageAttributeValue {
		return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	return map[string]sqstypes.MessageAttributeValue{
		HandoffAttr:    str(string(payload)),
		HandoffMACAttr: str(handoffMAC(key, body, string(payload))),
	}
}

// readHandoff returns the hand-off of rec when its signature is valid.
// present reports whether any hand-off attribute was there at all (a
// forged or stale one is counted).
func readHandoff(key []byte, rec events.SQSMessage) (h *handoff, present bool) {
	payload, mac := attr(rec, HandoffAttr), attr(rec, HandoffMACAttr)
	if payload == "" && mac == "" {
		return nil, false
	}
	want := handoffMAC(key, rec.Body, payload)
	if !hmac.Equal([]byte(mac), []byte(want)) {
		return nil, true
	}
	var v handoff
	if json.Unmarshal([]byte(payload), &v) != nil {
		return nil, true
	}
	return &v, true
}

// keepHandoff copies rec's hand-off attributes into attrs (a body moved to
// the DLQ): a dead-lettered hand-off keeps the acceptance it carries, so
// that `mmsgate redrive` brings it back as a hand-off, recorded and never
// sent again. Its signature is checked when it is read, as any other's.
func keepHandoff(rec events.SQSMessage, attrs map[string]sqstypes.MessageAttributeValue) {
	payload, mac := attr(rec, HandoffAttr), attr(rec, HandoffMACAttr)
	if payload == "" || mac == "" || len(payload) > MaxHandoffPayload || len(mac) != hex.EncodedLen(sha256.Size) {
		return
	}
	attrs[HandoffAttr] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(payload)}
	attrs[HandoffMACAttr] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(mac)}
}

// bounded is h with a payload of at most MaxHandoffPayload bytes: over
// it, without to and from (the request's are used) and then without the
// tracking id (accepted as NO_TRACKINGID), so that the hand-off always fits
// beside its body (size.go).
func (h handoff) bounded() handoff {
	size := func(v handoff) int { b, _ := json.Marshal(v); return len(b) }
	if size(h) <= MaxHandoffPayload {
		return h
	}
	h.To, h.From = "", ""
	if size(h) > MaxHandoffPayload {
		h.TrackingID, h.Code = "", string(apperr.CodeNoTrackingID)
	}
	return h
}

func (h *handoff) first() time.Time { return time.UnixMilli(h.First) }

func attr(rec events.SQSMessage, name string) string {
	if a, ok := rec.MessageAttributes[name]; ok && a.StringValue != nil {
		return *a.StringValue
	}
	return ""
}

// recordHandoff records an acceptance handed off by an earlier delivery.
// It is bounded: past SEND_RETRY_WINDOW, or when DynamoDB refuses it for
// good, it goes to the DLQ with a metric that an alarm watches.
func (h *Handler) recordHandoff(ctx context.Context, j *job, ho *handoff) outcome {
	o := store.Outcome{Attempt: j.attempt, TrackingID: ho.TrackingID, Code: ho.Code, To: cmp.Or(ho.To, j.req.To), From: cmp.Or(ho.From, j.req.From), MMSID: string(j.req.MMSID),
		Warnings: j.req.Warnings()}
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

// handOff puts the body back on the send queue with Skycore's answer,
// signed; the original is then deleted. Until the hand-off is recorded the
// claim stays, and after its lease the id is in doubt, never resent blindly.
func (h *Handler) handOff(ctx context.Context, j *job, ho handoff) outcome {
	queue := h.queueOf(j)
	if queue == "" {
		return redeliver
	}
	if b := ho.bounded(); b.TrackingID != ho.TrackingID {
		j.log.WarnContext(ctx, "tracking id too long to hand off; handed off without it (postbacks join through CLIENT_REFERENCE)",
			"trackingIdBytes", len(ho.TrackingID))
		ho = b
	}
	keys, err := h.d.Keys.Get(ctx)
	if err == nil {
		_, err = h.d.Queue.SendMessage(context.WithoutCancel(ctx), &sqs.SendMessageInput{
			QueueUrl: aws.String(queue), MessageBody: aws.String(j.rec.Body),
			MessageAttributes: handoffAttributes(handoffKey(keys.APIKey), j.rec.Body, ho),
		})
	}
	if err != nil {
		j.log.ErrorContext(ctx, "cannot hand off the acceptance; the id stays claimed and will be in doubt", "err", err)
		return redeliver
	}
	return ack
}

// queueOf is the queue j's record came from: a bulk record is backed off
// and handed off in the bulk lane, never promoted to the transactional one.
func (h *Handler) queueOf(j *job) string {
	if h.laneOf(j) == throttle.Bulk {
		return h.cfg.BulkSendQueueURL
	}
	return h.cfg.SendQueueURL
}

// laneOf is the lane of j's record, told by the queue it came from.
func (h *Handler) laneOf(j *job) throttle.Lane {
	return throttle.NewLanes(h.cfg.BulkSendQueueURL).Of(j.rec.EventSourceARN)
}
