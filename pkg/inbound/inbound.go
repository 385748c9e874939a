// Package inbound handles one inbound (MO) message end to end, apart from
// the HTTP and event plumbing: de-duplication, the suppression change of
// an opt-out or opt-in keyword, then its events, each published once
// (docs/events.md "Inbound messages" and "Suppression").
//
// The postback function calls it for a document skycore.ParseInbound
// reads; the outcome says what to answer Skycore.
package inbound

import (
	"context"
	"slices"
	"time"

	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/keyword"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// Event kinds of inbound messages (docs/events.md).
const (
	KindInbound = delivery.Inbound
	KindOptOut  = delivery.OptOut
	KindOptIn   = delivery.OptIn
)

// Event is what one inbound event carries besides id (always "") and
// recordedAt: the publisher copies it into the delivery event.
type Event struct {
	Kind       string   // inbound, optout, optin
	TrackingID string   // TRANSACTIONID / TRACKINGID
	Code       string   // N211 / N401
	To, From   string   // inbound: to = the code, from = the number; optout/optin: the other way round
	Text       string   // SMS
	Subject    string   // MMS
	Files      []string // MMS
	Keyword    string   // inbound: MMS KEYWORD; optout/optin: the keyword matched
	SPID       string
	OccurredAt string // RECEIVED / TIMESTAMP as given
}

// Events are the events of m, in the order they are published: inbound,
// then optout or optin when its body starts with a keyword of lists.
func Events(m *skycore.Inbound, lists keyword.Lists) []Event {
	ev := []Event{{Kind: KindInbound, TrackingID: m.MessageID(), Code: m.Code, To: m.To, From: m.From, Text: m.Text,
		Subject: m.Subject, Files: m.Files, Keyword: m.Keyword, SPID: m.SPID, OccurredAt: m.OccurredAt()}}
	intent, kw := lists.Match(m.Body())
	kind := map[keyword.Intent]string{keyword.OptOut: KindOptOut, keyword.OptIn: KindOptIn}[intent]
	if kind != "" {
		ev = append(ev, Event{Kind: kind, TrackingID: m.MessageID(), Code: m.Code, To: m.From, From: m.To,
			Keyword: kw, SPID: m.SPID, OccurredAt: m.OccurredAt()})
	}
	return ev
}

// Store is what Handle needs of pkg/store.
type Store interface {
	ClaimInbound(ctx context.Context, key, owner string, hold time.Time) (store.InboundClaim, error)
	InboundPublished(ctx context.Context, key, owner, kind string) (bool, error)
	InboundDone(ctx context.Context, key, owner string) (bool, error)
	ReleaseInbound(ctx context.Context, key, owner string) error
	OptOut(ctx context.Context, to, from string, w store.Word) (bool, error)
	OptIn(ctx context.Context, to, from string, w store.Word) (bool, error)
}

// Publisher publishes one event (delivery.Publish of the event built from
// e, with "id": "").
type Publisher func(ctx context.Context, e Event) error

// Outcome is what Handle did.
type Outcome int

const (
	Published Outcome = iota // every event is out: answer 200
	Duplicate                // a copy of a message already handled: answer 200, nothing published
	Busy                     // another invocation is handling it: answer 503 so that Skycore retries
)

func (o Outcome) String() string {
	return [...]string{"published", "duplicate", "busy"}[o]
}

// Result is Handle's report, for the log line and metrics.
type Result struct {
	Outcome Outcome
	Kinds   []string // the events published by this call
	// Suppression: "optout" or "optin" when the list changed, "stale"
	// when an older keyword arrived after a newer one (unchanged), "" when
	// there was no keyword or the numbers cannot be keys.
	Suppression string
}

// Handle records m once: it claims the message (de-duplication on its
// TRANSACTIONID / TRACKINGID), changes the suppression list for an opt-out
// or opt-in keyword, then publishes each of its events that an earlier
// attempt did not, and marks the message done. An error means the caller
// answers 5xx: the claim is released first, so Skycore's retry goes on
// from where this call stopped (the suppression change is idempotent,
// published events are not published again).
//
// The suppression change comes first, so that an application that sees
// optout knows that every request claimed from then on is refused.
func Handle(ctx context.Context, st Store, lists keyword.Lists, m *skycore.Inbound, owner string, hold time.Time, publish Publisher) (res Result, err error) {
	key := m.DedupKey(store.MaxInboundKey)
	c, err := st.ClaimInbound(ctx, key, owner, hold)
	if err != nil {
		return res, err
	}
	switch c.Decision {
	case store.InboundDuplicate:
		return Result{Outcome: Duplicate}, nil
	case store.InboundBusy:
		return Result{Outcome: Busy}, nil
	}
	defer func() {
		if err != nil {
			// The error the caller sees is err; a failed release only
			// makes the retry wait for the hold.
			_ = st.ReleaseInbound(context.WithoutCancel(ctx), key, owner)
		}
	}()
	events := Events(m, lists)
	if len(events) > 1 && digits(m.From) && digits(m.To) {
		w := store.Word{Keyword: events[1].Keyword, MessageID: m.MessageID()}
		if t, ok := m.Time(); ok {
			w.At = t
		}
		change := st.OptOut
		if events[1].Kind == KindOptIn {
			change = st.OptIn
		}
		applied, err := change(ctx, m.From, m.To, w)
		if err != nil {
			return res, err
		}
		res.Suppression = events[1].Kind
		if !applied {
			res.Suppression = "stale"
		}
	}
	for _, e := range events {
		if slices.Contains(c.Published, e.Kind) {
			continue
		}
		if err := publish(ctx, e); err != nil {
			return res, err
		}
		res.Kinds = append(res.Kinds, e.Kind)
		if _, err := st.InboundPublished(ctx, key, owner, e.Kind); err != nil {
			return res, err
		}
	}
	if _, err := st.InboundDone(ctx, key, owner); err != nil {
		return res, err
	}
	res.Outcome = Published
	return res, nil
}

// digits: only a number and a code made of digits can be suppression
// keys (they hold the key's separators otherwise).
func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
