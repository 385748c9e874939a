// Package delivery is the delivery event of contract §2 and its publisher
// to the delivery-events queue.
package delivery

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// Event kinds.
const (
	Accepted    = "accepted"
	Rejected    = "rejected"
	Retrying    = "retrying"
	Sent        = "sent"
	Delivered   = "delivered"
	Undelivered = "undelivered"
	Failed      = "failed"
	Expired     = "expired"
	// Unconfirmed: an accepted request got no final receipt (delivered,
	// undelivered, failed) within RECEIPT_WINDOW; status is its last known
	// state ("sent" or "accepted"). Published at most once per id, it is
	// not terminal and not a rank: a receipt that comes later still
	// produces its own event.
	Unconfirmed = "unconfirmed"
)

// Terminal reports whether kind ends a send request: exactly one of these
// is published per id.
func Terminal(kind string) bool { return kind == Accepted || kind == Rejected || kind == Expired }

// Event is one message on DELIVERY_EVENTS_QUEUE_URL.
type Event struct {
	ID           string `json:"id"`
	Event        string `json:"event"`
	TrackingID   string `json:"trackingId"`
	Code         string `json:"code"`
	Status       string `json:"status"`
	SentAs       string `json:"sentAs"`
	To           string `json:"to"`
	From         string `json:"from"`
	MMSID        *int64 `json:"mmsId,omitempty"`
	SPID         string `json:"spid"`
	Handset      string `json:"handset"`
	AggregatorID string `json:"aggregatorId"`
	Details      string `json:"details"`
	Error        string `json:"error"`
	Suppressed   bool   `json:"suppressed,omitempty"` // rejected from the suppression list, no Skycore call
	OccurredAt   string `json:"occurredAt"`
	RecordedAt   string `json:"recordedAt"`
}

// MMSID is an event's mmsId from its decimal text; nil (omitted) when the
// text is not a number.
func MMSID(s string) *int64 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil
	}
	return &v
}

// TimeFormat is recordedAt's format: UTC, RFC 3339 with milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// Stamp formats t as recordedAt wants it.
func Stamp(t time.Time) string { return t.UTC().Format(TimeFormat) }

type sender interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Publisher sends events to one queue.
type Publisher struct {
	api      sender
	queueURL string
	now      func() time.Time
}

// NewPublisher returns a publisher to queueURL.
func NewPublisher(api sender, queueURL string) *Publisher {
	return &Publisher{api: api, queueURL: queueURL, now: time.Now}
}

// Publish sends e, setting RecordedAt when empty, with message attribute
// event = e.Event. A failure is *apperr.Error UNAVAILABLE (retry).
func (p *Publisher) Publish(ctx context.Context, e Event) error {
	if e.RecordedAt == "" {
		e.RecordedAt = Stamp(p.now())
	}
	body, err := json.Marshal(e)
	if err != nil {
		return &apperr.Error{Code: apperr.CodeInternal, Op: "delivery.Publish", Class: apperr.Permanent, Message: "encode event", Err: err}
	}
	_, err = p.api.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:    aws.String(p.queueURL),
		MessageBody: aws.String(string(body)),
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"event": {DataType: aws.String("String"), StringValue: aws.String(e.Event)},
		},
	})
	if err != nil {
		return &apperr.Error{Code: apperr.CodeUnavailable, Class: apperr.Retry, Op: "delivery.Publish",
			Message: "cannot write the delivery event", Err: err}
	}
	return nil
}
