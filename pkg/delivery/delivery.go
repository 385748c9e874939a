// Package delivery is the delivery event of docs/events.md and its publisher
// to the delivery-events queue (and the optional event bus).
package delivery

import (
	"cmp"
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// Event kinds. Adding one is a change here (its constant and its line in
// kinds) plus schema/delivery-event.schema.json and docs/events.md: the
// client, the store and the postback function read the vocabulary below.
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
	// Canceled: a cancel won before any call of the id started (terminal).
	Canceled = "canceled"
	// Scheduled: a request with a future sendAt was taken in (never the
	// last word).
	Scheduled = "scheduled"
	// Inbound, OptOut, OptIn: a message a person sent to one of the
	// account's codes, and the opt-out or opt-in its first word is. They
	// belong to no request ("id": "").
	Inbound = "inbound"
	OptOut  = "optout"
	OptIn   = "optin"
)

// Ranks of the receipt kinds: a tracking id's state never moves to a
// lower rank (the store keeps the highest emitted).
const (
	RankSent  = 1 // the carrier sent it
	RankFinal = 2 // a final receipt: nothing follows it
)

// kind is what the code needs to know of one event kind.
type kind struct {
	name     string
	terminal bool // ends the send request: exactly one per id
	rank     int  // a receipt's rank (0: not a receipt)
}

// kinds is every event kind, in lifecycle order.
var kinds = []kind{
	{name: Scheduled},
	{name: Accepted, terminal: true},
	{name: Rejected, terminal: true},
	{name: Retrying},
	{name: Expired, terminal: true},
	{name: Canceled, terminal: true},
	{name: Sent, rank: RankSent},
	{name: Delivered, rank: RankFinal},
	{name: Undelivered, rank: RankFinal},
	{name: Failed, rank: RankFinal},
	{name: Unconfirmed},
	{name: Inbound},
	{name: OptOut},
	{name: OptIn},
}

func lookup(name string) (kind, bool) {
	for _, k := range kinds {
		if k.name == name {
			return k, true
		}
	}
	return kind{}, false
}

// Kinds lists every event kind, in lifecycle order.
func Kinds() []string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.name
	}
	return names
}

// Known reports whether kind is one of Kinds().
func Known(kind string) bool { _, ok := lookup(kind); return ok }

// Terminal reports whether kind ends a send request: exactly one of these
// is published per id.
func Terminal(kind string) bool { k, _ := lookup(kind); return k.terminal }

// Rank is a receipt kind's rank (RankSent, RankFinal); 0 for the others.
func Rank(kind string) int { k, _ := lookup(kind); return k.rank }

// Final reports whether kind is a final delivery receipt: no receipt
// follows it.
func Final(kind string) bool { return Rank(kind) == RankFinal }

// Receipt reports whether kind comes from a carrier receipt (a Skycore
// postback) rather than from the send itself.
func Receipt(kind string) bool { return Rank(kind) > 0 }

// About is what every event says of its request, whichever function
// publishes it. A field every event must carry is added here, in Event and
// in New (plus schema/delivery-event.schema.json and docs/events.md); the
// store keeps it on the record (store.Message.About) and each function
// fills it from what it holds (the request, the postback, the record).
type About struct {
	ID         string
	TrackingID string
	To, From   string
	MMSID      string // decimal text; not a number is omitted
	// Metadata is the request's own object of strings, echoed verbatim;
	// nil when the request had none. Never sent to Skycore.
	Metadata map[string]string
}

// Or is a with each empty field taken from b.
func (a About) Or(b About) About {
	return About{ID: cmp.Or(a.ID, b.ID), TrackingID: cmp.Or(a.TrackingID, b.TrackingID),
		To: cmp.Or(a.To, b.To), From: cmp.Or(a.From, b.From), MMSID: cmp.Or(a.MMSID, b.MMSID),
		Metadata: orMap(a.Metadata, b.Metadata)}
}

// orMap is a, or b when a is empty (cmp.Or does not take maps).
func orMap(a, b map[string]string) map[string]string {
	if len(a) > 0 {
		return a
	}
	return b
}

// New is the event of kind about a, occurring at at: the one builder of
// every event mmsgate publishes. Fields of one kind only (code, status,
// details...) are set by the caller on the result.
func New(kind string, a About, at time.Time) Event {
	return Event{ID: a.ID, Event: kind, TrackingID: a.TrackingID, To: a.To, From: a.From, MMSID: MMSID(a.MMSID),
		Metadata: a.Metadata, OccurredAt: Stamp(at)}
}

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
	// Warnings are the advice-level findings on an accepted request
	// (docs/codes.md "Warnings"); absent when none and on other kinds.
	Warnings []string `json:"warnings,omitempty"`
	SendAt   string   `json:"sendAt,omitempty"` // the request's sendAt, on its scheduled event
	// Metadata is the request's metadata, verbatim; absent when it had none.
	Metadata   map[string]string `json:"metadata,omitempty"`
	OccurredAt string            `json:"occurredAt"`
	RecordedAt string            `json:"recordedAt"`

	// Inbound messages only (docs/events.md "Inbound messages"): what the
	// person wrote, and the keyword (optout, optin: the one matched).
	Text    string   `json:"text,omitempty"`
	Subject string   `json:"subject,omitempty"`
	Files   []string `json:"files,omitempty"`
	Keyword string   `json:"keyword,omitempty"`
}

// About is what e says of its request: the fields New set from an About.
func (e Event) About() About {
	a := About{ID: e.ID, TrackingID: e.TrackingID, To: e.To, From: e.From, Metadata: e.Metadata}
	if e.MMSID != nil {
		a.MMSID = strconv.FormatInt(*e.MMSID, 10)
	}
	return a
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
	bus      putter // nil: no bus (WithBus)
	busName  string
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
	// The bus first: an event goes on the queue only once it is on the
	// bus, so a bus failure, retried with the whole publication, never
	// repeats the queue's event (a queue failure may repeat the bus's:
	// events are at least once, docs/events.md).
	if p.bus != nil {
		if err := p.putOnBus(ctx, e.Event, body); err != nil {
			return err
		}
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
