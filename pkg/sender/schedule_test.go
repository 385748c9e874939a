package sender

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/memdb"
	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/emf"
	"github.com/mmsgate/mmsgate/pkg/schedule"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// The scheduling rig: the real handler on the real store (memdb), the
// real sweeper, and one simulated clock for all three, so that days pass
// in a test. Skycore, the queue and the events are recorded.

type simClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *simClock) now() time.Time            { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *simClock) set(t time.Time)           { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *simClock) add(d time.Duration)       { c.set(c.now().Add(d)) }
func (c *simClock) in(d time.Duration) string { return c.now().Add(d).Format(time.RFC3339Nano) }

// schedQueue records SendMessage (DLQ moves, sweeper hand-offs) and the
// last visibility set per receipt handle.
type schedQueue struct {
	c       *simClock
	mu      sync.Mutex
	sent    []schedSent
	visible map[string]time.Duration
}

type schedSent struct {
	Queue, Body, Error string
	Visible            time.Time
}

func (q *schedQueue) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.visible[aws.ToString(in.ReceiptHandle)] = time.Duration(in.VisibilityTimeout) * time.Second
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

func (q *schedQueue) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	m := schedSent{Queue: aws.ToString(in.QueueUrl), Body: aws.ToString(in.MessageBody),
		Visible: q.c.now().Add(time.Duration(in.DelaySeconds) * time.Second)}
	if a, ok := in.MessageAttributes["error"]; ok {
		m.Error = aws.ToString(a.StringValue)
	}
	q.sent = append(q.sent, m)
	return &sqs.SendMessageOutput{}, nil
}

func (q *schedQueue) take(queue string) []schedSent {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out, rest []schedSent
	for _, m := range q.sent {
		if m.Queue == queue {
			out = append(out, m)
		} else {
			rest = append(rest, m)
		}
	}
	q.sent = rest
	return out
}

// dueIndex is the due GSI over memdb (which has none): a Scan filtered by
// the key condition, projected to the index's keys.
type dueIndex struct{ db *memdb.DB }

func (x dueIndex) Query(ctx context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := x.db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String("mmsgate-messages"), FilterExpression: aws.String("attribute_exists(dueMs)")})
	if err != nil {
		return nil, err
	}
	shard := in.ExpressionAttributeValues[":shard"].(*types.AttributeValueMemberS).Value
	until, _ := strconv.ParseInt(in.ExpressionAttributeValues[":until"].(*types.AttributeValueMemberN).Value, 10, 64)
	res := &dynamodb.QueryOutput{}
	for _, it := range out.Items {
		due, _ := strconv.ParseInt(it["dueMs"].(*types.AttributeValueMemberN).Value, 10, 64)
		if it["dueShard"].(*types.AttributeValueMemberS).Value == shard && due <= until {
			res.Items = append(res.Items, map[string]types.AttributeValue{"pk": it["pk"], "dueShard": it["dueShard"], "dueMs": it["dueMs"]})
		}
	}
	return res, nil
}

// syncBuf is a log and metrics sink safe for concurrent writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type schedRig struct {
	c       *simClock
	st      *store.Store
	h       *Handler
	sw      *schedule.Sweeper
	q       *schedQueue
	evs     *fakeEvents
	metrics *syncBuf
	n       int
	mu      sync.Mutex
	calls   map[string][]time.Time // Skycore calls per id, at the simulated time
	answer  func(id string) (*skycore.Response, error)
	// inCall, when set, runs inside each Skycore call (a race's other side).
	inCall func(id string)
}

func newSchedRig(t *testing.T, cfg func(*Config)) *schedRig {
	t.Helper()
	ctx := context.Background()
	db := memdb.New()
	if err := store.CreateTable(ctx, db, "mmsgate-messages"); err != nil {
		t.Fatal(err)
	}
	r := &schedRig{c: &simClock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}, evs: &fakeEvents{}, metrics: &syncBuf{},
		calls: map[string][]time.Time{}}
	r.answer = func(id string) (*skycore.Response, error) {
		return &skycore.Response{Status: "Success", TrackingID: "T-" + id}, nil
	}
	r.q = &schedQueue{c: r.c, visible: map[string]time.Duration{}}
	r.st = store.New(db, "mmsgate-messages", 0)
	r.st.SetClock(r.c.now)
	c := Config{Policy: sendreq.Policy{DefaultFrom: "60856"}, RetryWindow: time.Hour, InDoubtWindow: 15 * time.Minute,
		SendQueueURL: "send", DLQURL: "dlq"}
	if cfg != nil {
		cfg(&c)
	}
	r.h = NewHandler(c, Deps{Keys: fakeKeys{}, Store: r.st, Events: r.evs, Queue: r.q, Metrics: emf.New(r.metrics, "mmsgate", nil),
		Skycore: fakeSkycore{send: func(req *sendreq.Request) (*skycore.Response, error) {
			r.mu.Lock()
			r.calls[req.ID] = append(r.calls[req.ID], r.c.now())
			r.mu.Unlock()
			if r.inCall != nil {
				r.inCall(req.ID)
			}
			return r.answer(req.ID)
		}}})
	r.h.now = r.c.now
	// The sweeper reads the same queue URLs as the sender (template.yaml).
	r.sw = schedule.New(schedule.Config{SendQueueURL: c.SendQueueURL, BulkSendQueueURL: c.BulkSendQueueURL}, schedule.Deps{Store: r.st, Index: dueIndex{db}, Queue: r.q})
	r.sw.SetClock(r.c.now)
	return r
}

// deliver hands body to the handler as the receive-th delivery of an SQS
// message first enqueued at sent; true when it comes back (a batch item
// failure). Its visibility, if set, is r.q.visible[handle].
func (r *schedRig) deliver(t *testing.T, handle, body string, sent time.Time, receive int) bool {
	t.Helper()
	return r.deliverFrom(t, "", handle, body, sent, receive)
}

// deliverFrom is deliver from the queue of eventSourceARN (its lane).
func (r *schedRig) deliverFrom(t *testing.T, eventSourceARN, handle, body string, sent time.Time, receive int) bool {
	t.Helper()
	r.n++
	resp, err := r.h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{
		MessageId: fmt.Sprint("m", r.n), ReceiptHandle: handle, Body: body, EventSourceARN: eventSourceARN,
		Attributes: map[string]string{"SentTimestamp": strconv.FormatInt(sent.UnixMilli(), 10), "ApproximateReceiveCount": strconv.Itoa(receive)},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.BatchItemFailures) > 0
}

func (r *schedRig) sweep(t *testing.T) {
	t.Helper()
	if _, err := r.sw.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// events lists "id:event:code" of every event published so far, in order.
func (r *schedRig) events() []string {
	r.evs.mu.Lock()
	defer r.evs.mu.Unlock()
	var out []string
	for _, e := range r.evs.events {
		out = append(out, e.ID+":"+e.Event+":"+e.Code)
	}
	return out
}

func (r *schedRig) callsOf(id string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls[id])
}

func sendBody(id, extra string) string {
	return `{"id":"` + id + `","to":"17743199144","mmsId":48211` + extra + `}`
}

func cancelBody(id string) string { return `{"id":"` + id + `","cancel":true}` }

// TestSendAtFarAheadSurvivesRetention: a request 30 days ahead is taken
// in (one scheduled event, sendAt echoed, no call) and its SQS message
// deleted; redeliveries of it record and publish nothing more; 30 days
// later (twice SQS's longest retention) the sweep hands its body back,
// visible at sendAt, and it is called then, never before, its retry
// window counting from sendAt.
func TestSendAtFarAheadSurvivesRetention(t *testing.T) {
	r := newSchedRig(t, nil)
	t0 := r.c.now()
	sendAt := t0.Add(30*24*time.Hour + 90*time.Second).Truncate(time.Second)
	body := sendBody("far", `,"sendAt":"`+sendAt.Format(time.RFC3339)+`"`)
	if r.deliver(t, "h1", body, t0, 1) {
		t.Fatal("the scheduled request was not acknowledged: it would rest on the queue")
	}
	if diff := cmp.Diff([]string{"far:scheduled:"}, r.events()); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	if ev := r.evs.events[0]; ev.SendAt != sendAt.Format(time.RFC3339) || ev.To != "17743199144" || ev.From != "60856" {
		t.Errorf("scheduled event = %+v; want sendAt echoed and the request's to/from", ev)
	}
	// The same body delivered again (the delete was lost), a minute later.
	r.c.add(time.Minute)
	if r.deliver(t, "h2", body, t0, 2) {
		t.Fatal("a redelivered scheduled request came back")
	}
	if got := len(r.events()); got != 1 {
		t.Fatalf("%d events after a redelivery; want the one scheduled event", got)
	}
	// Daily sweeps for 30 days: nothing handed off early.
	for r.c.now().Before(sendAt.Add(-schedule.Lookahead - time.Hour)) {
		r.sweep(t)
		if got := r.q.take("send"); len(got) != 0 {
			t.Fatalf("handed off at %v, sendAt %v: %+v", r.c.now(), sendAt, got)
		}
		r.c.add(24 * time.Hour)
	}
	// Then a sweep a minute before sendAt; Skycore busy at first.
	r.answer = func(string) (*skycore.Response, error) {
		return nil, &apperr.Error{Code: "E503", Class: apperr.Retry, Message: "busy"}
	}
	r.c.set(sendAt.Add(-time.Minute))
	r.sweep(t)
	got := r.q.take("send")
	if len(got) != 1 || got[0].Body != body || got[0].Visible.Before(sendAt) {
		t.Fatalf("hand-off = %+v; want the body, visible at %v", got, sendAt)
	}
	r.c.set(got[0].Visible)
	if !r.deliver(t, "h3", got[0].Body, got[0].Visible, 1) {
		t.Fatal("a failed call was not retried")
	}
	if calls := r.callsOf("far"); len(calls) != 1 || calls[0].Before(sendAt) {
		t.Fatalf("calls at %v; want one at or after %v", calls, sendAt)
	}
	// Its retry window (1 h) counts from sendAt, not from 30 days ago.
	if evs := r.events(); evs[len(evs)-1] != "far:retrying:E503" {
		t.Fatalf("events %v; want retrying (the window counts from sendAt)", evs)
	}
	r.answer = func(id string) (*skycore.Response, error) {
		return &skycore.Response{Status: "Success", TrackingID: "T-" + id}, nil
	}
	r.c.add(r.q.visible["h3"])
	if r.deliver(t, "h3", got[0].Body, got[0].Visible, 2) {
		t.Fatal("not accepted")
	}
	if diff := cmp.Diff([]string{"far:scheduled:", "far:retrying:E503", "far:accepted:"}, r.events()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	// The original body, delivered once more after all: nothing.
	if r.deliver(t, "h4", body, t0, 3) || len(r.callsOf("far")) != 2 || len(r.events()) != 3 {
		t.Errorf("a late redelivery: calls %v, events %v", r.callsOf("far"), r.events())
	}
}

// TestSendAtDueBodyBeforeUnschedule: the body comes back at sendAt while
// the record is still SCHEDULED (a sweeper died between its SendMessage and
// Unschedule, or the original delivery returned late): the sender ends the
// wait itself and calls once; the sweeper's copy then finds it final.
func TestSendAtDueBodyBeforeUnschedule(t *testing.T) {
	r := newSchedRig(t, nil)
	t0 := r.c.now()
	sendAt := t0.Add(10 * time.Minute).Truncate(time.Second)
	body := sendBody("due", `,"sendAt":"`+sendAt.Format(time.RFC3339)+`"`)
	if r.deliver(t, "h1", body, t0, 1) {
		t.Fatal("not taken in")
	}
	r.c.set(sendAt.Add(-30 * time.Second))
	// A redelivery before sendAt, no sweeper on it: the record holds it.
	if r.deliver(t, "h2", body, t0, 2) || len(r.callsOf("due")) != 0 {
		t.Fatalf("a redelivery before sendAt: came back or called (%v)", r.callsOf("due"))
	}
	r.c.set(sendAt)
	if r.deliver(t, "h3", body, t0, 3) {
		t.Fatal("the due body was not sent")
	}
	r.sweep(t)
	for _, m := range r.q.take("send") { // nothing left in the index: none
		r.deliver(t, "h4", m.Body, sendAt, 1)
	}
	if calls := r.callsOf("due"); len(calls) != 1 || calls[0].Before(sendAt) {
		t.Fatalf("calls %v; want one at %v", calls, sendAt)
	}
	if diff := cmp.Diff([]string{"due:scheduled:", "due:accepted:"}, r.events()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestSendAtKeepsLane: a scheduled request goes back, when due, to the
// queue it came from: a bulk request is never promoted to the
// transactional lane by its wait, nor a transactional one demoted.
func TestSendAtKeepsLane(t *testing.T) {
	const (
		sendURL = "https://sqs.us-east-1.amazonaws.com/000000000000/mmsgate-send"
		bulkURL = "https://sqs.us-east-1.amazonaws.com/000000000000/mmsgate-send-bulk"
		sendARN = "arn:aws:sqs:us-east-1:000000000000:mmsgate-send"
		bulkARN = "arn:aws:sqs:us-east-1:000000000000:mmsgate-send-bulk"
	)
	for _, tt := range []struct {
		name, arn, lane, queue, other string
	}{
		{"bulk", bulkARN, "bulk", bulkURL, sendURL},
		{"transactional", sendARN, "", sendURL, bulkURL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newSchedRig(t, func(c *Config) { c.SendQueueURL, c.BulkSendQueueURL = sendURL, bulkURL })
			t0 := r.c.now()
			sendAt := t0.Add(time.Hour).Truncate(time.Second)
			body := sendBody("laned", `,"sendAt":"`+sendAt.Format(time.RFC3339)+`"`)
			if r.deliverFrom(t, tt.arn, "h1", body, t0, 1) {
				t.Fatal("not taken in")
			}
			if sc, err := r.st.GetScheduled(context.Background(), "laned"); err != nil || sc.Lane != tt.lane {
				t.Fatalf("record = %+v, %v; want lane %q", sc, err, tt.lane)
			}
			r.c.set(sendAt.Add(-time.Minute))
			r.sweep(t)
			if got := r.q.take(tt.other); len(got) != 0 {
				t.Fatalf("handed off to %s: %+v", tt.other, got)
			}
			got := r.q.take(tt.queue)
			if len(got) != 1 || got[0].Body != body {
				t.Fatalf("hand-offs to %s = %+v; want the body", tt.queue, got)
			}
			r.c.set(got[0].Visible)
			if r.deliverFrom(t, tt.arn, "h2", got[0].Body, got[0].Visible, 1) {
				t.Fatal("the due body was not sent")
			}
			if diff := cmp.Diff([]string{"laned:scheduled:", "laned:accepted:"}, r.events()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCancel: a cancel wins only when no call of its id can have reached
// Skycore; each id ends with exactly one terminal event; a refused cancel
// is counted with its reason; redeliveries of cancels and of canceled
// requests change nothing.
func TestCancel(t *testing.T) {
	t.Run("before the request", func(t *testing.T) {
		r := newSchedRig(t, nil)
		if r.deliver(t, "c", cancelBody("early"), r.c.now(), 1) {
			t.Fatal("cancel not acknowledged")
		}
		r.c.add(time.Second)
		r.deliver(t, "c2", cancelBody("early"), r.c.now(), 1) // a second cancel
		if r.deliver(t, "r", sendBody("early", ""), r.c.now(), 1) {
			t.Fatal("the canceled request came back")
		}
		if diff := cmp.Diff([]string{"early:canceled:"}, r.events()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if n := len(r.callsOf("early")); n != 0 {
			t.Errorf("%d calls of a canceled id", n)
		}
	})
	t.Run("scheduled", func(t *testing.T) {
		r := newSchedRig(t, nil)
		sendAt := r.c.now().Add(time.Hour).Truncate(time.Second)
		body := sendBody("sch", `,"sendAt":"`+sendAt.Format(time.RFC3339)+`"`)
		r.deliver(t, "r", body, r.c.now(), 1)
		r.c.add(time.Minute)
		if r.deliver(t, "c", cancelBody("sch"), r.c.now(), 1) {
			t.Fatal("cancel not acknowledged")
		}
		r.c.set(sendAt.Add(-time.Minute))
		r.sweep(t)
		if got := r.q.take("send"); len(got) != 0 {
			t.Fatalf("a canceled schedule was handed off: %+v", got)
		}
		r.c.set(sendAt)
		r.deliver(t, "r2", body, sendAt, 2) // the original, come back late
		if diff := cmp.Diff([]string{"sch:scheduled:", "sch:canceled:"}, r.events()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if n := len(r.callsOf("sch")); n != 0 {
			t.Errorf("%d calls of a canceled id", n)
		}
	})
	t.Run("after a failed call", func(t *testing.T) {
		r := newSchedRig(t, nil)
		r.answer = func(string) (*skycore.Response, error) {
			return nil, &apperr.Error{Code: "E503", Class: apperr.Retry, Message: "busy"}
		}
		if !r.deliver(t, "r", sendBody("ret", ""), r.c.now(), 1) {
			t.Fatal("not retried")
		}
		r.deliver(t, "c", cancelBody("ret"), r.c.now(), 1)
		r.c.add(time.Minute)
		r.deliver(t, "r", sendBody("ret", ""), r.c.now(), 2)
		if diff := cmp.Diff([]string{"ret:retrying:E503", "ret:canceled:"}, r.events()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if n := len(r.callsOf("ret")); n != 1 {
			t.Errorf("%d calls; want the one before the cancel", n)
		}
	})
	t.Run("claim in progress", func(t *testing.T) {
		r := newSchedRig(t, nil)
		r.inCall = func(id string) {
			// The cancel arrives while the call is under way.
			r.inCall = nil
			if r.deliver(t, "c", cancelBody(id), r.c.now(), 1) {
				t.Error("a refused cancel came back")
			}
		}
		if r.deliver(t, "r", sendBody("busy", ""), r.c.now(), 1) {
			t.Fatal("not accepted")
		}
		if diff := cmp.Diff([]string{"busy:accepted:"}, r.events()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if m := r.metrics.String(); !strings.Contains(m, `"CancelRefused":1`) || !strings.Contains(m, `"Reason":"CLAIMED"`) {
			t.Errorf("refused cancel not counted with its reason: %s", m)
		}
	})
	t.Run("in doubt", func(t *testing.T) {
		r := newSchedRig(t, nil)
		r.answer = func(string) (*skycore.Response, error) {
			return nil, &apperr.Error{Code: apperr.CodeTimeout, Class: apperr.Retry, Op: "skycore.SendSavedMMS", Message: "no answer"}
		}
		if !r.deliver(t, "r", sendBody("doubt", ""), r.c.now(), 1) {
			t.Fatal("not retried")
		}
		r.deliver(t, "c", cancelBody("doubt"), r.c.now(), 1)
		r.c.add(20 * time.Minute) // past the doubt window: a cancel still cannot know
		r.deliver(t, "c2", cancelBody("doubt"), r.c.now(), 1)
		r.answer = func(id string) (*skycore.Response, error) {
			return &skycore.Response{Status: "Success", TrackingID: "T-" + id}, nil
		}
		r.deliver(t, "r", sendBody("doubt", ""), r.c.now(), 2)
		if diff := cmp.Diff([]string{"doubt:retrying:TIMEOUT", "doubt:accepted:"}, r.events()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if m := r.metrics.String(); strings.Count(m, `"Reason":"INDOUBT"`) != 2 {
			t.Errorf("refused cancels not counted as INDOUBT: %s", m)
		}
	})
	t.Run("final", func(t *testing.T) {
		r := newSchedRig(t, nil)
		r.deliver(t, "r", sendBody("done", ""), r.c.now(), 1)
		r.deliver(t, "c", cancelBody("done"), r.c.now(), 1)
		if diff := cmp.Diff([]string{"done:accepted:"}, r.events()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if !strings.Contains(r.metrics.String(), `"Reason":"FINAL"`) {
			t.Error("refused cancel not counted")
		}
	})
	t.Run("malformed cancel cancels nothing", func(t *testing.T) {
		r := newSchedRig(t, nil)
		if r.deliver(t, "c", `{"id":"mal","cancel":true,"to":"17743199144"}`, r.c.now(), 1) {
			t.Fatal("not moved to the DLQ")
		}
		if dlq := r.q.take("dlq"); len(dlq) != 1 || !strings.Contains(dlq[0].Error, "cancel") {
			t.Errorf("DLQ = %+v", dlq)
		}
		if r.deliver(t, "c2", `{"id":"mal","cancel":"yes"}`, r.c.now(), 1) {
			t.Fatal("not moved to the DLQ")
		}
		if dlq := r.q.take("dlq"); len(dlq) != 1 || !strings.Contains(dlq[0].Error, "cancel") {
			t.Errorf("DLQ = %+v", dlq)
		}
		r.deliver(t, "r", sendBody("mal", ""), r.c.now(), 1)
		if diff := cmp.Diff([]string{"mal:accepted:"}, r.events()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
}

// TestExpiresAt: no call at or after expiresAt: already past on arrival
// (no call at all), and during back-off (every retry before it, none
// after, never hidden past it); the request ends expired, code
// EXPIRES_AT, its body in the DLQ with the reason.
func TestExpiresAt(t *testing.T) {
	t.Run("already past", func(t *testing.T) {
		r := newSchedRig(t, nil)
		body := sendBody("past", `,"expiresAt":"`+r.c.in(-time.Second)+`"`)
		if r.deliver(t, "r", body, r.c.now(), 1) {
			t.Fatal("came back")
		}
		if n := len(r.callsOf("past")); n != 0 {
			t.Errorf("%d calls after expiresAt", n)
		}
		if diff := cmp.Diff([]string{"past:expired:EXPIRES_AT"}, r.events()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if dlq := r.q.take("dlq"); len(dlq) != 1 || dlq[0].Body != body || !strings.Contains(dlq[0].Error, "expiresAt") {
			t.Errorf("DLQ = %+v", dlq)
		}
	})
	t.Run("past with sendAt ahead", func(t *testing.T) {
		r := newSchedRig(t, nil)
		body := sendBody("both", `,"sendAt":"`+r.c.in(time.Hour)+`","expiresAt":"`+r.c.in(-time.Second)+`"`)
		r.deliver(t, "r", body, r.c.now(), 1)
		if diff := cmp.Diff([]string{"both:expired:EXPIRES_AT"}, r.events()); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
	})
	t.Run("during back-off", func(t *testing.T) {
		r := newSchedRig(t, func(c *Config) { c.BaseBackoff, c.MaxBackoff = 20*time.Second, 15*time.Minute })
		r.answer = func(string) (*skycore.Response, error) {
			return nil, &apperr.Error{Code: "E503", Class: apperr.Retry, Message: "busy"}
		}
		t0 := r.c.now()
		exp := t0.Add(3 * time.Minute)
		body := sendBody("bo", `,"expiresAt":"`+exp.Format(time.RFC3339Nano)+`"`)
		for n := 1; n < 50; n++ {
			if !r.deliver(t, "r", body, t0, n) {
				break
			}
			hide := r.q.visible["r"]
			if r.c.now().Add(hide).After(exp.Add(time.Second)) {
				t.Fatalf("receive %d at %v hidden for %v: past expiresAt %v", n, r.c.now(), hide, exp)
			}
			r.c.add(hide)
		}
		calls := r.callsOf("bo")
		if len(calls) < 2 {
			t.Fatalf("calls %v; want retries before expiresAt", calls)
		}
		for _, c := range calls {
			if !c.Before(exp) {
				t.Errorf("call at %v, expiresAt %v", c, exp)
			}
		}
		evs := r.events()
		if evs[len(evs)-1] != "bo:expired:EXPIRES_AT" || terminals(evs) != 1 {
			t.Errorf("events %v; want one expired EXPIRES_AT, last", evs)
		}
		if at := r.c.now(); at.Before(exp) || at.After(exp.Add(schedule.LastRetryLead+time.Minute)) {
			t.Errorf("expired at %v; expiresAt %v", at, exp)
		}
		if dlq := r.q.take("dlq"); len(dlq) != 1 || !strings.Contains(dlq[0].Error, "EXPIRES_AT") {
			t.Errorf("DLQ = %+v", dlq)
		}
	})
}

// terminals counts the terminal send events of "id:event:code" lines.
func terminals(evs []string) int {
	n := 0
	for _, e := range evs {
		if delivery.Terminal(strings.Split(e, ":")[1]) {
			n++
		}
	}
	return n
}

// failingKindEvents refuses the first n publications of kind.
type failingKindEvents struct {
	*fakeEvents
	kind string
	n    int
}

func (f *failingKindEvents) Publish(ctx context.Context, e delivery.Event) error {
	f.mu.Lock()
	fail := e.Event == f.kind && f.n > 0
	if fail {
		f.n--
	}
	f.mu.Unlock()
	if fail {
		return fmt.Errorf("events queue unavailable")
	}
	return f.fakeEvents.Publish(ctx, e)
}

// TestScheduledEventFailsThenRedelivered: the scheduled event cannot be
// published: the SQS message stays (redeliver), and its redelivery
// publishes the event once; a cancel in between waits for it (no canceled
// before scheduled) and then wins; the request is never called.
func TestScheduledEventFailsThenRedelivered(t *testing.T) {
	r := newSchedRig(t, nil)
	r.h.d.Events = &failingKindEvents{fakeEvents: r.evs, kind: delivery.Scheduled, n: 1}
	body := sendBody("flaky", `,"sendAt":"`+r.c.in(time.Hour)+`"`)
	if !r.deliver(t, "r", body, r.c.now(), 1) {
		t.Fatal("acknowledged with its scheduled event unpublished: the schedule would never be swept")
	}
	if !r.deliver(t, "c", cancelBody("flaky"), r.c.now(), 1) {
		t.Fatal("a cancel decided before the scheduled event was out")
	}
	if r.deliver(t, "r", body, r.c.now(), 2) {
		t.Fatal("redelivery did not publish the scheduled event")
	}
	r.c.add(cancelRetry)
	if r.deliver(t, "c", cancelBody("flaky"), r.c.now(), 2) {
		t.Fatal("the cancel came back again")
	}
	r.c.add(2 * time.Hour)
	r.sweep(t)
	if got := r.q.take("send"); len(got) != 0 {
		t.Fatalf("a canceled schedule was handed off: %+v", got)
	}
	if diff := cmp.Diff([]string{"flaky:scheduled:", "flaky:canceled:"}, r.events()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if n := len(r.callsOf("flaky")); n != 0 {
		t.Errorf("%d calls", n)
	}
}
