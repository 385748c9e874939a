package receipt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/mmsgate/mmsgate/internal/memdb"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// clock is the one settable clock of a rig: the handler's, the
// scheduler's, the queue's and the store's.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeQueue is an SQS queue as the receipt function sees it: delayed
// sends, receives that hide a message for the visibility timeout,
// ChangeMessageVisibility on the latest receipt handle, deletes of what
// the batch response does not name.
type fakeQueue struct {
	mu         sync.Mutex
	now        func() time.Time
	visibility time.Duration // the queue's VisibilityTimeout
	msgs       []*qmsg
	seq        int
	sent       []*sqs.SendMessageInput
	changes    []int32 // every ChangeMessageVisibility timeout, in order
	failSend   func() error
}

type qmsg struct {
	id, body, handle string
	visibleAt        time.Time
	receives         int
}

var (
	_ sender = (*fakeQueue)(nil)
	_ queue  = (*fakeQueue)(nil)
)

func (q *fakeQueue) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.failSend != nil {
		if err := q.failSend(); err != nil {
			return nil, err
		}
	}
	q.seq++
	q.sent = append(q.sent, in)
	q.msgs = append(q.msgs, &qmsg{id: fmt.Sprint("m", q.seq), body: aws.ToString(in.MessageBody),
		visibleAt: q.now().Add(time.Duration(in.DelaySeconds) * time.Second)})
	return &sqs.SendMessageOutput{MessageId: aws.String(fmt.Sprint("m", q.seq))}, nil
}

func (q *fakeQueue) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if in.VisibilityTimeout < 0 || in.VisibilityTimeout > 43200 {
		return nil, errors.New("InvalidParameterValue")
	}
	q.changes = append(q.changes, in.VisibilityTimeout)
	for _, m := range q.msgs {
		if m.handle == aws.ToString(in.ReceiptHandle) {
			m.visibleAt = q.now().Add(time.Duration(in.VisibilityTimeout) * time.Second)
			return &sqs.ChangeMessageVisibilityOutput{}, nil
		}
	}
	return nil, errors.New("ReceiptHandleIsInvalid")
}

// receive returns every visible message, hiding each for the queue's
// visibility timeout.
func (q *fakeQueue) receive() events.SQSEvent {
	q.mu.Lock()
	defer q.mu.Unlock()
	var ev events.SQSEvent
	for _, m := range q.msgs {
		if m.visibleAt.After(q.now()) {
			continue
		}
		q.seq++
		m.handle, m.visibleAt = fmt.Sprint("h", q.seq), q.now().Add(q.visibility)
		m.receives++
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: m.id, ReceiptHandle: m.handle, Body: m.body})
	}
	return ev
}

// settle deletes the records the response does not report as failures.
func (q *fakeQueue) settle(ev events.SQSEvent, resp events.SQSEventResponse) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, r := range ev.Records {
		if slices.ContainsFunc(resp.BatchItemFailures, func(f events.SQSBatchItemFailure) bool { return f.ItemIdentifier == r.MessageId }) {
			continue
		}
		q.msgs = slices.DeleteFunc(q.msgs, func(m *qmsg) bool { return m.id == r.MessageId })
	}
}

func (q *fakeQueue) pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}

// fakePublisher records events; fail, when set, refuses one.
type fakePublisher struct {
	mu     sync.Mutex
	events []delivery.Event
	fail   func(delivery.Event) error
}

var _ publisher = (*fakePublisher)(nil)

func (p *fakePublisher) Publish(_ context.Context, e delivery.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		if err := p.fail(e); err != nil {
			return err
		}
	}
	p.events = append(p.events, e)
	return nil
}

// kinds lists "id:event:status" of every event so far.
func (p *fakePublisher) kinds() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, e := range p.events {
		out = append(out, e.ID+":"+e.Event+":"+e.Status)
	}
	return out
}

// rig is the receipt function on memdb with a fake queue and publisher,
// and a scheduler on the same queue. Postbacks go through the store as the
// postback function records them (late_test.go drives the real postback
// handler).
type rig struct {
	db    *memdb.DB
	clock *clock
	st    *store.Store
	q     *fakeQueue
	pub   *fakePublisher
	h     *Handler
	sched *Scheduler
	md    map[string]string // the metadata of the requests accept records
}

// rigWindow is the receipt function's RECEIPT_WINDOW until accept sets it.
const rigWindow = time.Minute

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	db := memdb.New()
	if err := store.CreateTable(ctx, db, "mmsgate-messages"); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now()}
	r := &rig{db: db, clock: c, st: store.New(db, "mmsgate-messages", 0), pub: &fakePublisher{}}
	r.st.SetClock(c.now)
	r.q = &fakeQueue{now: c.now, visibility: time.Minute}
	r.h = NewHandler(Config{QueueURL: "receipt-queue", Window: rigWindow}, Deps{Store: r.st, Events: r.pub, Queue: r.q})
	r.h.now = c.now
	r.sched = NewScheduler(r.q, "receipt-queue")
	r.sched.now = c.now
	return r
}

// accept records id as accepted by the sender with trackingID (linked),
// its accepted event published, and schedules its check window from now.
func (r *rig) accept(t *testing.T, id, trackingID string, window time.Duration) {
	t.Helper()
	ctx := context.Background()
	r.h.cfg.Window = window // RECEIPT_WINDOW, the same on both sides
	if _, _, err := r.st.Claim(ctx, id, store.Claim{Owner: "sender", Lease: r.clock.now().Add(time.Minute), Metadata: r.md}); err != nil {
		t.Fatal(err)
	}
	o := store.Outcome{TrackingID: trackingID, To: "17743199144", From: "60856", MMSID: "48211"}
	if trackingID == "" {
		o.Code = "NO_TRACKINGID"
	}
	if won, _, err := r.st.Accept(ctx, id, "sender", r.clock.now().Add(time.Minute), o); err != nil || !won {
		t.Fatalf("Accept = %v, %v", won, err)
	}
	if trackingID != "" {
		if err := r.st.Link(ctx, trackingID, id, r.md); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.sched.Schedule(ctx, id, trackingID, r.clock.now().Add(window)); err != nil {
		t.Fatal(err)
	}
	if err := r.st.EventSent(ctx, id); err != nil {
		t.Fatal(err)
	}
	r.pub.Publish(ctx, delivery.Event{ID: id, Event: delivery.Accepted, TrackingID: trackingID})
}

// kinds of the postback codes the tests use: event and rank.
var kinds = map[string]struct {
	event string
	rank  int
}{"N101": {delivery.Sent, 1}, "N102": {delivery.Delivered, 2}, "E102": {delivery.Undelivered, 2}}

// postback records one of Skycore's postbacks as the postback function
// does (store.Postback, publish when it advances the state, PostbackDone).
func (r *rig) postback(t *testing.T, code, trackingID string) {
	t.Helper()
	ctx := context.Background()
	k := kinds[code]
	d, j, err := r.st.Postback(ctx, trackingID, code+"_k", k.rank, k.event, "pb-"+code, r.clock.now().Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if d != store.Emit {
		return
	}
	r.pub.Publish(ctx, delivery.Event{ID: j.ID, Event: k.event, TrackingID: trackingID, Code: code, Status: "status of " + code})
	if err := r.st.PostbackDone(ctx, trackingID, code+"_k", "pb-"+code, delivery.About{}); err != nil {
		t.Fatal(err)
	}
}

// poll is one receive of the event source mapping: the visible records
// as one batch, settled by the handler's response.
func (r *rig) poll(t *testing.T) (events.SQSEvent, events.SQSEventResponse) {
	t.Helper()
	ev := r.q.receive()
	if len(ev.Records) == 0 {
		return ev, events.SQSEventResponse{}
	}
	resp, err := r.h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	r.q.settle(ev, resp)
	return ev, resp
}

// run polls every step for span, as the event source mapping does, and
// returns how many records the function received.
func (r *rig) run(t *testing.T, span, step time.Duration) (received int) {
	t.Helper()
	for end := r.clock.now().Add(span); r.clock.now().Before(end); r.clock.add(step) {
		ev, _ := r.poll(t)
		received += len(ev.Records)
	}
	return received
}
