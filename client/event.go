package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mmsgate/mmsgate/pkg/delivery"
)

// Event kinds (docs/events.md): the value of Event.Event.
const (
	Accepted    = delivery.Accepted    // Skycore took the request (terminal)
	Rejected    = delivery.Rejected    // permanently refused, locally or by Skycore (terminal)
	Retrying    = delivery.Retrying    // a transient failure; the sender tries again
	Expired     = delivery.Expired     // the retry window ran out (terminal)
	Sent        = delivery.Sent        // receipt: the carrier sent it (N101/N201)
	Delivered   = delivery.Delivered   // receipt: delivered to the handset (N102/N202, final)
	Undelivered = delivery.Undelivered // receipt: not delivered (E102/E202, final)
	Failed      = delivery.Failed      // receipt: failed (E101/E201, final)
	Unconfirmed = delivery.Unconfirmed // no final receipt within RECEIPT_WINDOW; a late one still comes
	Canceled    = delivery.Canceled    // a cancel won before any call (terminal)
	Scheduled   = delivery.Scheduled   // taken in, to be sent at its sendAt
	Inbound     = delivery.Inbound     // a message a person sent to one of the account's codes ("id": "")
	OptOut      = delivery.OptOut      // that message was an opt-out keyword ("id": "")
	OptIn       = delivery.OptIn       // that message was an opt-in keyword ("id": "")
)

// Kinds lists every event kind this client knows, in lifecycle order.
func Kinds() []string { return delivery.Kinds() }

// Event is one delivery event (docs/events.md), decoded from a message of the
// delivery-events queue. It has delivery.Event's fields and JSON shape:
// delivery.Event(e) converts it.
type Event delivery.Event

// Terminal reports whether e ends its send request: accepted, rejected or
// expired. Exactly one terminal event is published per request id.
func (e Event) Terminal() bool { return delivery.Terminal(e.Event) }

// Final reports whether e is a final delivery receipt from the carrier:
// delivered, undelivered or failed. No receipt follows a final one.
func (e Event) Final() bool { return delivery.Final(e.Event) }

// Receipt reports whether e comes from a Skycore postback (sent or a final
// receipt) rather than from the send itself.
func (e Event) Receipt() bool { return delivery.Receipt(e.Event) }

// Recorded is RecordedAt as a time: when mmsgate recorded the event.
func (e Event) Recorded() (time.Time, error) { return time.Parse(time.RFC3339, e.RecordedAt) }

// Errors of DecodeEvent.
var (
	// ErrNotEvent marks a body that is not one JSON object with the
	// fields of an event, each of its type.
	ErrNotEvent = errors.New("not a delivery event")
	// ErrUnknownKind marks an event whose kind is missing or not one of
	// Kinds().
	ErrUnknownKind = errors.New("unknown delivery event kind")
)

// DecodeEvent decodes one message body of the delivery-events queue.
//
// It is strict about what the application acts on and tolerant about the
// rest. It fails with ErrNotEvent when the body is not exactly one JSON
// object, or a known field has the wrong type ("mmsId": "x"); and with
// ErrUnknownKind when "event" is missing or not a kind of Kinds(): code
// that switches on the kind must not mistake a new kind for an old one.
// Fields it does not know are ignored, so a later mmsgate may add fields
// without breaking applications. With ErrUnknownKind the event is returned
// as decoded, for applications that want to log or keep it.
func DecodeEvent(body []byte) (Event, error) {
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return Event{}, fmt.Errorf("%w: body is not a JSON object", ErrNotEvent)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var e Event
	if err := dec.Decode(&e); err != nil {
		return Event{}, fmt.Errorf("%w: %w", ErrNotEvent, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Event{}, fmt.Errorf("%w: data after the JSON object", ErrNotEvent)
	}
	switch {
	case delivery.Known(e.Event):
		return e, nil
	case e.Event == "":
		return e, fmt.Errorf("%w: no \"event\" field", ErrUnknownKind)
	default:
		return e, fmt.Errorf("%w %q", ErrUnknownKind, e.Event)
	}
}
