package sender

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/sim"
)

// laneHarness is a harness whose handler knows both lanes' queues.
func laneHarness(t *testing.T, simCfg func(*sim.Config)) *harness {
	t.Helper()
	hs := newHarness(t, simCfg, nil)
	hs.h.cfg.BulkSendQueueURL = hs.env.BulkSendQueueURL // known once the queues exist
	return hs
}

// laneRecord is the record of a message received from queue, with the
// eventSourceARN its event source mapping gives it.
func (hs *harness) laneRecord(t *testing.T, queue, body string) (events.SQSEvent, *string) {
	t.Helper()
	ctx := context.Background()
	if _, err := hs.env.SendTo(ctx, queue, body, nil); err != nil {
		t.Fatal(err)
	}
	r, err := hs.env.SQSClient().ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(hs.env.URL(queue)),
		MaxNumberOfMessages: 1, VisibilityTimeout: 30,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}})
	if err != nil || len(r.Messages) != 1 {
		t.Fatalf("receive from %s: %+v, %v", queue, r, err)
	}
	arn, err := hs.env.QueueARN(ctx, hs.env.URL(queue))
	if err != nil {
		t.Fatal(err)
	}
	m := r.Messages[0]
	ev := record(t, aws.ToString(m.MessageId), body, time.Now())
	ev.Records[0].ReceiptHandle = aws.ToString(m.ReceiptHandle)
	ev.Records[0].EventSourceARN = arn
	return ev, m.ReceiptHandle
}

// visibilityQueue is the queue of the handler's last visibility change of
// the message of receipt ("" when there was none).
func (hs *harness) visibilityQueue(t *testing.T, receipt *string) string {
	t.Helper()
	var q string
	for _, r := range hs.env.SQSFaults.Recorded("ChangeMessageVisibility") {
		var c struct{ QueueUrl, ReceiptHandle string }
		if err := json.Unmarshal(r.Body, &c); err != nil {
			t.Fatal(err)
		}
		if r.Caller == handlerApp && c.ReceiptHandle == aws.ToString(receipt) {
			q = c.QueueUrl
		}
	}
	return q
}

// TestLaneKeptOnRetry: a retried record is backed off on the queue it came
// from; a bulk request is never promoted to the transactional lane, nor a
// transactional one demoted.
func TestLaneKeptOnRetry(t *testing.T) {
	for _, lane := range []struct{ queue, other string }{
		{localenv.BulkSendQueue, localenv.SendQueue},
		{localenv.SendQueue, localenv.BulkSendQueue},
	} {
		t.Run(lane.queue, func(t *testing.T) {
			hs := laneHarness(t, func(c *sim.Config) {
				c.Faults = []sim.Fault{{Kind: "E106", Seconds: 40, Match: sim.Match{ToSuffix: "9144"}}}
			})
			ev, receipt := hs.laneRecord(t, lane.queue, `{"id":"lane-retry","to":"17743199144","mmsId":1000}`)
			hs.mustInvoke(t, context.Background(), ev, 1)
			if got, want := hs.visibilityQueue(t, receipt), hs.env.URL(lane.queue); got != want {
				t.Errorf("back-off set on %q, want %q", got, want)
			}
			if wait, ok := hs.hiddenFor(t, receipt); !ok || wait < 40*time.Second {
				t.Errorf("E106 every 40 s: hidden for %v (set %v)", wait, ok)
			}
			if n := hs.held(t, lane.queue); n != 1 {
				t.Errorf("%d messages hidden on %s, want the retried one", n, lane.queue)
			}
			if c, err := hs.env.QueueCounts(context.Background(), hs.env.URL(lane.other)); err != nil || c.Total() != 0 {
				t.Errorf("%s: %+v, %v; want nothing", lane.other, c, err)
			}
		})
	}
}

// TestLaneKeptOnHandoff: an acceptance DynamoDB would not record goes back
// on the queue its request came from, and is recorded from there.
func TestLaneKeptOnHandoff(t *testing.T) {
	for _, lane := range []struct{ queue, other string }{
		{localenv.BulkSendQueue, localenv.SendQueue},
		{localenv.SendQueue, localenv.BulkSendQueue},
	} {
		t.Run(lane.queue, func(t *testing.T) {
			hs := laneHarness(t, nil)
			hs.h.d.Store = refusingOnce(hs)
			ev, receipt := hs.laneRecord(t, lane.queue, `{"id":"lane-handoff","to":"17743199144","mmsId":1000}`)
			hs.mustInvoke(t, context.Background(), ev, 0)
			// Acknowledged: the event source mapping deletes the original.
			if _, err := hs.env.SQSClient().DeleteMessage(context.Background(), &sqs.DeleteMessageInput{
				QueueUrl: aws.String(hs.env.URL(lane.queue)), ReceiptHandle: receipt}); err != nil {
				t.Fatal(err)
			}
			if c, err := hs.env.QueueCounts(context.Background(), hs.env.URL(lane.other)); err != nil || c.Total() != 0 {
				t.Errorf("%s: %+v, %v; want nothing", lane.other, c, err)
			}
			handoffs := hs.drain(t, lane.queue)
			if len(handoffs) != 1 {
				t.Fatalf("%s = %+v, want the hand-off", lane.queue, handoffs)
			}
			next := fromQueue(t, handoffs[0])
			next.Records[0].EventSourceARN = ev.Records[0].EventSourceARN
			hs.mustInvoke(t, context.Background(), next, 0)
			evs, err := hs.env.DrainEvents()
			if err != nil || len(evs) != 1 || evs[0].Event != "accepted" {
				t.Errorf("events = %+v, %v; want one accepted", evs, err)
			}
			if n := hs.sim.Counts().Received["lane-handoff"]; n != 1 {
				t.Errorf("sent %d times, want 1", n)
			}
		})
	}
}

// TestLaneKeptOnDeadLetter: a body the sender moves to a dead-letter queue
// (malformed, or its request expired) goes to its lane's DLQ, where a
// redrive sends it back to its own queue; without BULK_DEAD_LETTER_QUEUE_URL
// every body goes to DEAD_LETTER_QUEUE_URL, as before.
func TestLaneKeptOnDeadLetter(t *testing.T) {
	for _, tt := range []struct {
		name, queue, dlq, other string
		bulkDLQ                 bool
	}{
		{"bulk", localenv.BulkSendQueue, localenv.BulkSendDLQ, localenv.SendDLQ, true},
		{"transactional", localenv.SendQueue, localenv.SendDLQ, localenv.BulkSendDLQ, true},
		{"bulk without a bulk DLQ", localenv.BulkSendQueue, localenv.SendDLQ, localenv.BulkSendDLQ, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hs := laneHarness(t, nil)
			if tt.bulkDLQ {
				hs.h.cfg.BulkDLQURL = hs.env.BulkDLQURL
			}
			past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
			bodies := []string{
				`{"id":"` + strings.Repeat("x", 65) + `","to":"17743199144","mmsId":1000}`, // no usable id
				`{"id":"lane-expired","to":"17743199144","mmsId":1000,"expiresAt":"` + past + `"}`,
			}
			for _, body := range bodies {
				ev, _ := hs.laneRecord(t, tt.queue, body)
				hs.mustInvoke(t, context.Background(), ev, 0)
			}
			var got []string
			for _, m := range hs.peek(t, tt.dlq) {
				got = append(got, aws.ToString(m.Body))
			}
			slices.Sort(got)
			slices.Sort(bodies)
			if diff := cmp.Diff(bodies, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.dlq, diff)
			}
			if other := hs.peek(t, tt.other); len(other) != 0 {
				t.Errorf("%s holds %d, want none", tt.other, len(other))
			}
			if evs := hs.kinds(t); !slices.Equal(evs, []string{"lane-expired:expired:EXPIRES_AT"}) {
				t.Errorf("events = %v, want the one expired", evs)
			}
		})
	}
}
