package receipt

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// TestUnconfirmedAfterWindow: with only N101 (or no receipt at all), the
// request gets exactly one unconfirmed event once the window has passed,
// none before, with its last known state and the record's fields; a
// final receipt first means no unconfirmed at all.
func TestUnconfirmedAfterWindow(t *testing.T) {
	const window = 20 * time.Minute // scaled down: one delay, one visibility wait
	tests := map[string]struct {
		codes []string // postbacks before the window ends
		want  []string
	}{
		"only N101: unconfirmed, status sent": {codes: []string{"N101"},
			want: []string{"w:accepted:", "w:sent:status of N101", "w:unconfirmed:sent"}},
		"no receipt at all: unconfirmed, status accepted": {
			want: []string{"w:accepted:", "w:unconfirmed:accepted"}},
		"N102 first: no unconfirmed": {codes: []string{"N101", "N102"},
			want: []string{"w:accepted:", "w:sent:status of N101", "w:delivered:status of N102"}},
		"E102 alone: no unconfirmed": {codes: []string{"E102"},
			want: []string{"w:accepted:", "w:undelivered:status of E102"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r := newRig(t)
			r.accept(t, "w", "T-w", window)
			if got := r.q.sent[0].DelaySeconds; got != 900 {
				t.Errorf("DelaySeconds = %d, want 900 (SQS's longest)", got)
			}
			r.run(t, 10*time.Minute, time.Minute)
			for _, c := range tt.codes {
				r.postback(t, c, "T-w")
			}
			received := r.run(t, window-10*time.Minute-time.Second, time.Minute) // just before due
			if got := r.pub.kinds(); slicesHas(got, "unconfirmed") {
				t.Fatalf("unconfirmed before the window: %v", got)
			}
			received += r.run(t, time.Hour, 10*time.Second)
			if diff := cmp.Diff(tt.want, r.pub.kinds()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if received != 2 || r.q.pending() != 0 {
				t.Errorf("received %d times, %d left on the queue; want 2 (after the delay, at due), 0", received, r.q.pending())
			}
		})
	}
}

func slicesHas(kinds []string, event string) bool {
	for _, k := range kinds {
		if strings.Contains(k, ":"+event+":") {
			return true
		}
	}
	return false
}

// TestUnconfirmedEventFields: the event carries the id, the tracking id,
// the record's to, from, mmsId and metadata (what the record tells every
// event: with pkg/sender's and pkg/postback's TestAboutInEveryEvent, every
// event kind), and occurredAt = due; no metadata when the request had none.
// A request accepted without a tracking id is checked on its msg# alone.
func TestUnconfirmedEventFields(t *testing.T) {
	md := map[string]string{"orderId": "8812", "tenant:x.y-z_1": `a "quoted" <é> value`}
	for _, c := range []struct {
		name, trackingID, status string
		md                       map[string]string
	}{
		{"with metadata", "T-f", "accepted", md},
		{"without metadata", "T-f", "accepted", nil},
		{"no tracking id", "", "accepted", md},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			r.md = c.md
			due := r.clock.now().Add(time.Minute)
			r.accept(t, "f", c.trackingID, time.Minute)
			r.run(t, 2*time.Minute, 10*time.Second)
			mms := int64(48211)
			want := delivery.Event{ID: "f", Event: delivery.Unconfirmed, TrackingID: c.trackingID, Status: c.status, To: "17743199144",
				From: "60856", MMSID: &mms, Metadata: c.md, OccurredAt: delivery.Stamp(due)}
			if n := len(r.pub.events); n != 2 {
				t.Fatalf("%d events, want accepted and unconfirmed", n)
			}
			if diff := cmp.Diff(want, r.pub.events[1]); diff != "" {
				t.Errorf("unconfirmed event (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDayWindowTakesThreeReceives: a 24h window: received after the 15
// min delay, at about 12h15m (visibility 12h less a minute, SQS's most)
// and at due; every wait before due is a batch item failure.
func TestDayWindowTakesThreeReceives(t *testing.T) {
	r := newRig(t)
	r.accept(t, "d", "T-d", DefaultWindow)
	received := r.run(t, 25*time.Hour, time.Minute)
	if received != 3 {
		t.Errorf("received %d times, want 3", received)
	}
	if diff := cmp.Diff([]int32{43140, 42360}, r.q.changes); diff != "" {
		t.Errorf("visibility timeouts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"d:accepted:", "d:unconfirmed:accepted"}, r.pub.kinds()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestNotYetDue: a check before due sets its visibility to the time left
// (at most 12h less a minute) and is reported as a failure.
func TestNotYetDue(t *testing.T) {
	tests := map[string]struct {
		left time.Duration
		want int32
	}{
		"ten minutes":           {10 * time.Minute, 600},
		"a fraction rounded up": {1500 * time.Millisecond, 2},
		"a day: capped":         {24 * time.Hour, 43140},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r := newRig(t)
			body, _ := json.Marshal(Check{ID: "n", TrackingID: "T-n", Due: delivery.Stamp(r.clock.now().Add(tt.left))})
			ev := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", ReceiptHandle: "h1", Body: string(body)}}}
			r.q.msgs = append(r.q.msgs, &qmsg{id: "m1", handle: "h1"})
			resp, err := r.h.Handle(context.Background(), ev)
			if err != nil || len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "m1" {
				t.Errorf("Handle = %+v, %v; want m1 failed", resp, err)
			}
			if diff := cmp.Diff([]int32{tt.want}, r.q.changes); diff != "" {
				t.Errorf("visibility (-want +got):\n%s", diff)
			}
			if len(r.pub.events) != 0 {
				t.Errorf("events %v before due", r.pub.kinds())
			}
		})
	}
}

// TestBusySlot: while a postback holds the tracking id's emitter slot the
// check comes back in 5-30 s; once the postback is done, unconfirmed goes
// out after its event, with its state.
func TestBusySlot(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	r.accept(t, "b", "T-b", time.Minute)
	// A postback invocation holds the slot (emitting N101 right now).
	if d, _, err := r.st.Postback(ctx, "T-b", "N101_x", 1, "sent", "pb-1", r.clock.now().Add(time.Hour)); err != nil || d != store.Emit {
		t.Fatalf("Postback = %v, %v", d, err)
	}
	r.clock.add(time.Minute)
	_, resp := r.poll(t)
	if len(resp.BatchItemFailures) != 1 || len(r.q.changes) != 1 || r.q.changes[0] < 5 || r.q.changes[0] > 30 {
		t.Fatalf("busy: response %+v, visibility %v; want a failure back in 5-30 s", resp, r.q.changes)
	}
	r.pub.Publish(ctx, delivery.Event{ID: "b", Event: delivery.Sent}) // the postback's event
	if err := r.st.PostbackDone(ctx, "T-b", "N101_x", "pb-1", delivery.About{}); err != nil {
		t.Fatal(err)
	}
	r.run(t, time.Minute, 5*time.Second)
	if diff := cmp.Diff([]string{"b:accepted:", "b:sent:", "b:unconfirmed:sent"}, r.pub.kinds()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestAcceptedEventPending: unconfirmed never goes out before the
// request's accepted event.
func TestAcceptedEventPending(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	r.st.Claim(ctx, "p", store.Claim{Owner: "sender", Lease: r.clock.now().Add(time.Minute)})
	r.st.Accept(ctx, "p", "sender", r.clock.now().Add(time.Minute), store.Outcome{TrackingID: "T-p"})
	r.sched.Schedule(ctx, "p", "T-p", r.clock.now())
	r.clock.add(time.Second)
	if _, resp := r.poll(t); len(resp.BatchItemFailures) != 1 || len(r.pub.events) != 0 {
		t.Fatalf("accepted pending: response %+v, events %v; want a failure, none", resp, r.pub.kinds())
	}
	r.st.EventSent(ctx, "p")
	r.run(t, rigWindow+time.Minute, 5*time.Second) // due at acceptance + RECEIPT_WINDOW, whatever the body said
	if diff := cmp.Diff([]string{"p:unconfirmed:accepted"}, r.pub.kinds()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestPublishFailure: the events queue refuses the unconfirmed event: the
// marker is cleared and the slot freed, the record comes back in 30 s,
// and the retry publishes it once.
func TestPublishFailure(t *testing.T) {
	r := newRig(t)
	r.accept(t, "x", "T-x", time.Minute)
	var fails atomic.Int32
	r.pub.fail = func(e delivery.Event) error {
		if e.Event == delivery.Unconfirmed && fails.Add(1) <= 2 {
			return errors.New("down")
		}
		return nil
	}
	r.clock.add(time.Minute)
	if _, resp := r.poll(t); len(resp.BatchItemFailures) != 1 {
		t.Fatalf("response %+v, want a failure", resp)
	}
	if got := r.q.changes[len(r.q.changes)-1]; got != 30 {
		t.Errorf("visibility after a publish failure = %d, want 30", got)
	}
	// A postback right after is not blocked by the failed check.
	r.postback(t, "N101", "T-x")
	r.run(t, 2*time.Minute, 10*time.Second)
	if diff := cmp.Diff([]string{"x:accepted:", "x:sent:status of N101", "x:unconfirmed:sent"}, r.pub.kinds()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if fails.Load() != 3 || r.q.pending() != 0 {
		t.Errorf("%d publish attempts, %d left; want 3 (two failed), 0", fails.Load(), r.q.pending())
	}
}

// TestDuplicateChecks: the same request scheduled twice (a redelivery
// republished its accepted event), in one batch and in later batches,
// gets one unconfirmed event.
func TestDuplicateChecks(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	r.accept(t, "dup", "T-dup", time.Minute)
	r.sched.Schedule(ctx, "dup", "T-dup", r.clock.now().Add(time.Minute))
	r.sched.Schedule(ctx, "dup", "T-dup", r.clock.now().Add(3*time.Minute))
	r.accept(t, "dup-nt", "", time.Minute)
	r.sched.Schedule(ctx, "dup-nt", "", r.clock.now().Add(time.Minute))
	r.run(t, 5*time.Minute, 10*time.Second)
	want := []string{"dup:accepted:", "dup-nt:accepted:", "dup:unconfirmed:accepted", "dup-nt:unconfirmed:accepted"}
	got := r.pub.kinds()
	if diff := cmp.Diff(want, got, cmpSorted); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if r.q.pending() != 0 {
		t.Errorf("%d checks left on the queue", r.q.pending())
	}
}

// TestNoTrackingID: a request accepted without a tracking id (nothing can
// confirm it) gets unconfirmed with status accepted and trackingId "".
func TestNoTrackingID(t *testing.T) {
	r := newRig(t)
	r.accept(t, "nt", "", 20*time.Minute)
	if c, _, err := Decode([]byte(aws.ToString(r.q.sent[0].MessageBody))); err != nil || c.TrackingID != "" {
		t.Fatalf("scheduled %+v, %v", c, err)
	}
	r.run(t, time.Hour, time.Minute)
	if diff := cmp.Diff([]string{"nt:accepted:", "nt:unconfirmed:accepted"}, r.pub.kinds()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if tid := r.pub.events[1].TrackingID; tid != "" {
		t.Errorf("trackingId = %q, want empty", tid)
	}
}

// TestLateReceiptAfterUnconfirmed: a final receipt that comes after the
// unconfirmed event still produces its own event; a second final receipt
// does not (late_test.go does the same through the postback handler).
func TestLateReceiptAfterUnconfirmed(t *testing.T) {
	r := newRig(t)
	r.accept(t, "late", "T-late", 20*time.Minute)
	r.postback(t, "N101", "T-late")
	r.run(t, time.Hour, time.Minute)
	r.postback(t, "N102", "T-late")
	r.postback(t, "E102", "T-late")
	want := []string{"late:accepted:", "late:sent:status of N101", "late:unconfirmed:sent", "late:delivered:status of N102"}
	if diff := cmp.Diff(want, r.pub.kinds()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestStoreFailure: DynamoDB failing brings the record back in 30 s, and
// the check succeeds once it recovers.
func TestStoreFailure(t *testing.T) {
	r := newRig(t)
	r.accept(t, "s", "T-s", time.Minute)
	good := r.h.d.Store
	r.h.d.Store = failingStore{records: good}
	r.clock.add(time.Minute)
	if _, resp := r.poll(t); len(resp.BatchItemFailures) != 1 || r.q.changes[len(r.q.changes)-1] != 30 {
		t.Fatalf("response %+v, visibility %v; want a failure back in 30 s", resp, r.q.changes)
	}
	r.h.d.Store = good
	r.run(t, time.Minute, 10*time.Second)
	if diff := cmp.Diff([]string{"s:accepted:", "s:unconfirmed:accepted"}, r.pub.kinds()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

var cmpSorted = cmpopts.SortSlices(func(a, b string) bool { return a < b })

// failingStore fails every read.
type failingStore struct{ records }

var _ records = failingStore{}

func (failingStore) CheckTarget(context.Context, string) (*store.Target, error) {
	return nil, errors.New("throttled")
}

// TestMalformedCheckDropped: a body that is not a check is logged and
// deleted (only our functions write the queue: it would fail forever).
func TestMalformedCheckDropped(t *testing.T) {
	r := newRig(t)
	for name, body := range map[string]string{"not JSON": "{", "no id": `{"due":"2026-01-01T00:00:00.000Z"}`, "bad due": `{"id":"a","due":"tomorrow"}`} {
		t.Run(name, func(t *testing.T) {
			resp, err := r.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m", Body: body}}})
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Errorf("Handle = %+v, %v; want deleted", resp, err)
			}
		})
	}
}
