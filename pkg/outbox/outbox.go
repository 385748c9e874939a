// Package outbox turns the SendMessage calls that the records of one SQS
// batch make at about the same time into SendMessageBatch calls: one
// request for up to ten messages instead of ten (SQS bills per request).
//
// The records of one batch are a Group, each record joins it; only
// messages of one group share a call, so a call lives no longer than its
// own callers' contexts.
//
// It changes no guarantee of its callers: SendMessage still returns only
// once its own message is on the queue (or with that message's error), so
// whatever a caller does after a send (release a claim, mark an event
// published) still happens after it. What it costs is a short wait: a
// message waits until every record in progress is itself waiting to send
// or done, until ten are waiting for one queue, or Linger, whichever comes
// first.
package outbox

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// MaxEntries is SendMessageBatch's limit.
const MaxEntries = 10

// MaxEntryBytes is the largest message that is batched: ten of them stay
// under SQS's 256 KiB batch payload (the limit before 2025, which local
// stand-ins keep). Larger ones are sent on their own.
const MaxEntryBytes = 25 * 1024

// DefaultLinger bounds how long a message waits for others.
const DefaultLinger = 100 * time.Millisecond

// api is the part of SQS the outbox uses.
type api interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// Outbox is safe for concurrent use. Callers that have not joined send
// at once, as through the client itself.
type Outbox struct {
	api    api
	bus    busAPI // nil: no PutEvents (WithBus)
	Linger time.Duration
	def    *group // for callers that join outside any Group
}

// group is the callers whose sends are batched together: one SQS batch's
// records. Only they hold each other up, and a batch call carries only
// their messages, so it lives no longer than their contexts (another
// invocation's deadline, in a process that runs several, is not theirs).
type group struct {
	o       *Outbox
	mu      sync.Mutex
	open    int                 // joined callers still at work
	waiting int                 // of those, how many wait in SendMessage
	pending map[string][]*entry // by queue URL, not yet flushed
	timer   *time.Timer
}

type entry struct {
	ctx   context.Context // its caller's: the call is not cut short while it lives
	in    *sqs.SendMessageInput
	out   *sqs.SendMessageOutput
	ev    *ebtypes.PutEventsRequestEntry // a bus entry instead (bus.go)
	evOut *eventbridge.PutEventsOutput
	err   error
	done  chan struct{}
}

// New returns an outbox in front of api.
func New(api api) *Outbox {
	o := &Outbox{api: api, Linger: DefaultLinger}
	o.def = o.newGroup()
	return o
}

func (o *Outbox) newGroup() *group { return &group{o: o, pending: map[string][]*entry{}} }

type (
	groupKey struct{}
	joined   struct{}
)

// Group returns ctx for a new group of callers (one SQS batch's records):
// each joins with the returned context.
func (o *Outbox) Group(ctx context.Context) context.Context {
	return context.WithValue(ctx, groupKey{}, o.newGroup())
}

// Join marks ctx's holder as one of the callers of ctx's group (or of the
// outbox's own, outside any) whose sends are batched: its messages wait
// for the others' while it is at work. leave must be called when it is
// done (it then no longer holds the others up).
func (o *Outbox) Join(ctx context.Context) (_ context.Context, leave func()) {
	g, ok := ctx.Value(groupKey{}).(*group)
	if !ok || g.o != o {
		g = o.def
	}
	g.mu.Lock()
	g.open++
	g.mu.Unlock()
	var once sync.Once
	return context.WithValue(ctx, joined{}, g), func() {
		once.Do(func() {
			g.mu.Lock()
			g.open--
			g.flushIfAllWaitLocked()
		})
	}
}

// Alone returns ctx whose sends go out at once, each in its own call
// that ends with ctx: a batch call lives as long as its longest-lived
// caller, so a message that must be on the queue, or surely not sent, by
// ctx's deadline is not batched.
func (o *Outbox) Alone(ctx context.Context) context.Context {
	return context.WithValue(ctx, joined{}, (*group)(nil))
}

// SendMessage sends in, batched with others when ctx has joined.
func (o *Outbox) SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	g, ok := ctx.Value(joined{}).(*group)
	if !ok || g == nil || g.o != o || !batchable(in) || len(opts) > 0 {
		return o.api.SendMessage(ctx, in, opts...)
	}
	return g.sendMessage(ctx, in)
}

func (g *group) sendMessage(ctx context.Context, in *sqs.SendMessageInput) (*sqs.SendMessageOutput, error) {
	e := &entry{ctx: ctx, in: in, done: make(chan struct{})}
	g.enqueue(aws.ToString(in.QueueUrl), e)
	<-e.done
	return e.out, e.err
}

// enqueue adds e to the pending entries of url (a queue URL, or busKey)
// and flushes when it is time; e.done closes once it is sent.
func (g *group) enqueue(url string, e *entry) {
	g.mu.Lock()
	g.waiting++
	g.pending[url] = append(g.pending[url], e)
	switch {
	case len(g.pending[url]) >= MaxEntries:
		batch := g.take(url)
		g.mu.Unlock()
		g.send(url, batch)
	default:
		if g.timer == nil {
			var t *time.Timer
			t = time.AfterFunc(g.o.Linger, func() {
				g.mu.Lock()
				if g.timer != t {
					g.mu.Unlock() // a flush came first
					return
				}
				g.flushLocked()
			})
			g.timer = t
		}
		g.flushIfAllWaitLocked()
	}
}

// flushIfAllWaitLocked flushes everything pending when every joined
// caller waits for a send: nothing more can come soon. It unlocks.
func (g *group) flushIfAllWaitLocked() {
	if g.waiting < g.open {
		g.mu.Unlock()
		return
	}
	g.flushLocked()
}

// flushLocked sends everything pending, one batch per queue. It unlocks.
func (g *group) flushLocked() {
	batches := map[string][]*entry{}
	for url := range g.pending {
		batches[url] = g.take(url)
	}
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
	g.mu.Unlock()
	var wg sync.WaitGroup
	for url, batch := range batches {
		wg.Go(func() { g.send(url, batch) })
	}
	wg.Wait()
}

func (g *group) take(url string) []*entry {
	batch := g.pending[url]
	delete(g.pending, url)
	return batch
}

// send sends one queue's entries and hands each its own result.
func (g *group) send(url string, batch []*entry) {
	defer func() {
		// No longer waiting from here: a caller back at work holds the
		// next flush up, as it should.
		g.mu.Lock()
		g.waiting -= len(batch)
		g.mu.Unlock()
		for _, e := range batch {
			close(e.done)
		}
	}()
	if url == busKey {
		g.putEvents(batch)
		return
	}
	if len(batch) == 1 {
		batch[0].out, batch[0].err = g.o.api.SendMessage(batch[0].ctx, batch[0].in)
		return
	}
	ctx, stop := batchContext(batch)
	defer stop()
	in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(url)}
	ids := make(map[string]int, len(batch))
	for i, e := range batch {
		id := strconv.Itoa(i)
		ids[id] = i
		in.Entries = append(in.Entries, sqstypes.SendMessageBatchRequestEntry{
			Id: aws.String(id), MessageBody: e.in.MessageBody, DelaySeconds: e.in.DelaySeconds,
			MessageAttributes: e.in.MessageAttributes, MessageSystemAttributes: e.in.MessageSystemAttributes,
		})
	}
	out, err := g.o.api.SendMessageBatch(ctx, in)
	if err == nil && out == nil {
		err = &apperr.Error{Code: apperr.CodeUnavailable, Class: apperr.Retry, Op: "sqs.SendMessageBatch", Message: "no answer"}
	}
	if err != nil {
		for _, e := range batch {
			e.err = err
		}
		return
	}
	// An entry counts as sent only when the answer names its id as
	// successful and never as failed (an ambiguous answer is retried: at
	// worst a repeat, never a loss).
	ok, failed := make([]bool, len(batch)), make([]bool, len(batch))
	for _, r := range out.Successful {
		if i, known := ids[aws.ToString(r.Id)]; known {
			ok[i] = true
			batch[i].out = &sqs.SendMessageOutput{MessageId: r.MessageId, MD5OfMessageBody: r.MD5OfMessageBody,
				MD5OfMessageAttributes: r.MD5OfMessageAttributes, MD5OfMessageSystemAttributes: r.MD5OfMessageSystemAttributes,
				SequenceNumber: r.SequenceNumber}
		}
	}
	for _, f := range out.Failed {
		if i, known := ids[aws.ToString(f.Id)]; known && !failed[i] {
			failed[i] = true
			batch[i].err = &apperr.Error{Code: apperr.CodeUnavailable, Class: apperr.Retry, Op: "sqs.SendMessageBatch",
				Message: "entry refused: " + aws.ToString(f.Code) + ": " + aws.ToString(f.Message)}
		}
	}
	for i := range batch {
		switch {
		case failed[i]:
			batch[i].out = nil
		case !ok[i]:
			batch[i].err = &apperr.Error{Code: apperr.CodeUnavailable, Class: apperr.Retry, Op: "sqs.SendMessageBatch",
				Message: "entry missing from the answer"}
		}
	}
}

// batchContext is cancelled once every entry's caller's context is done:
// no caller's cancellation or deadline fails the others' messages.
func batchContext(batch []*entry) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(batch[0].ctx))
	var left atomic.Int32
	left.Store(int32(len(batch)))
	stops := make([]func() bool, 0, len(batch))
	for _, e := range batch {
		stops = append(stops, context.AfterFunc(e.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		}))
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// batchable: standard-queue messages small enough for a batch.
func batchable(in *sqs.SendMessageInput) bool {
	if in.MessageDeduplicationId != nil || in.MessageGroupId != nil {
		return false
	}
	size := len(aws.ToString(in.MessageBody))
	for k, v := range in.MessageAttributes {
		size += len(k) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue)) + len(v.BinaryValue)
	}
	return size <= MaxEntryBytes
}
