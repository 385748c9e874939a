package outbox

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// The event bus (docs/events.md "On an EventBridge bus") is batched like
// the queues: a group's PutEvents calls of one entry each become calls of
// up to MaxEntries entries and MaxEventBytes in all.
const (
	// MaxEventBytes is PutEvents' limit on a call's entries together.
	MaxEventBytes = 256 * 1024
	// busKey is the pending key of bus entries (never a queue URL).
	busKey = "\x00bus"
	// busAttempts is how many times a refused entry is put before its
	// caller gets the refusal: only the refused entries are put again.
	busAttempts = 3
)

// busBackoff is the wait before putting refused entries again (tests
// shorten it).
var busBackoff = 50 * time.Millisecond

type busAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// WithBus makes o batch PutEvents to api too (PutEvents); it returns o.
func (o *Outbox) WithBus(api busAPI) *Outbox {
	o.bus = api
	return o
}

// PutEvents puts in's entry, batched with the group's others when ctx has
// joined and in holds one entry. Its answer is that entry's alone: a
// FailedEntryCount of 1 with the entry's error code when EventBridge
// refused it busAttempts times.
func (o *Outbox) PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	g, ok := ctx.Value(joined{}).(*group)
	if !ok || g.o != o || len(in.Entries) != 1 || len(opts) > 0 || in.EndpointId != nil || eventSize(in.Entries[0]) > MaxEventBytes {
		return o.bus.PutEvents(ctx, in, opts...)
	}
	e := &entry{ctx: ctx, ev: &in.Entries[0], done: make(chan struct{})}
	g.enqueue(busKey, e)
	<-e.done
	return e.evOut, e.err
}

// eventSize is an entry's size as PutEvents counts it toward its limit
// (its strings, 14 bytes for a time); the bus name is counted too, to
// stay on the safe side.
func eventSize(e ebtypes.PutEventsRequestEntry) int {
	n := len(aws.ToString(e.Source)) + len(aws.ToString(e.DetailType)) + len(aws.ToString(e.Detail)) + len(aws.ToString(e.EventBusName))
	for _, r := range e.Resources {
		n += len(r)
	}
	if e.Time != nil {
		n += 14
	}
	return n
}

// putEvents puts the batch in calls of at most MaxEntries entries and
// MaxEventBytes, and hands each entry its own result.
func (g *group) putEvents(batch []*entry) {
	for len(batch) > 0 {
		n, size := 0, 0
		for n < len(batch) && n < MaxEntries && size+eventSize(*batch[n].ev) <= MaxEventBytes {
			size += eventSize(*batch[n].ev)
			n++
		}
		g.putCall(batch[:n])
		batch = batch[n:]
	}
}

// putCall is one PutEvents of the batch, then again for the entries
// EventBridge refused (FailedEntryCount), up to busAttempts in all: an
// entry it took is never put twice.
func (g *group) putCall(batch []*entry) {
	ctx, stop := batchContext(batch)
	defer stop()
	left := batch
	for attempt := 1; len(left) > 0; attempt++ {
		in := &eventbridge.PutEventsInput{Entries: make([]ebtypes.PutEventsRequestEntry, len(left))}
		for i, e := range left {
			in.Entries[i] = *e.ev
		}
		out, err := g.o.bus.PutEvents(ctx, in)
		if err == nil && (out == nil || len(out.Entries) != len(left)) {
			// Without one result per entry, no entry is known to be on
			// the bus: all are retried by their callers (at worst a repeat).
			err = &apperr.Error{Code: apperr.CodeUnavailable, Class: apperr.Retry, Op: "eventbridge.PutEvents", Message: "answer without one result per entry"}
		}
		if err != nil {
			for _, e := range left {
				e.err = err
			}
			return
		}
		var refused []*entry
		for i, r := range out.Entries {
			e := left[i]
			if r.ErrorCode == nil && r.EventId != nil {
				e.evOut = &eventbridge.PutEventsOutput{Entries: []ebtypes.PutEventsResultEntry{r}}
				continue
			}
			if r.ErrorCode == nil { // neither an id nor an error: not known to be on the bus
				r.ErrorCode, r.ErrorMessage = aws.String("NoEventId"), aws.String("the answer gave the entry no event id")
			}
			e.evOut = &eventbridge.PutEventsOutput{FailedEntryCount: 1, Entries: []ebtypes.PutEventsResultEntry{r}}
			refused = append(refused, e)
		}
		if attempt >= busAttempts || len(refused) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(attempt) * busBackoff):
		}
		left = refused
	}
}
