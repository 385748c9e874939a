package receipt

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/emf"
)

// forge puts a check on the receipt queue as any writer of the queue
// could: its own id, tracking id and due, visible at once.
func (r *rig) forge(t *testing.T, id, trackingID string, due time.Time) {
	t.Helper()
	body, err := json.Marshal(Check{ID: id, TrackingID: trackingID, Due: delivery.Stamp(due)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.q.SendMessage(context.Background(), &sqs.SendMessageInput{MessageBody: aws.String(string(body))}); err != nil {
		t.Fatal(err)
	}
}

// item reads one item of the table (nil when absent).
func (r *rig) item(t *testing.T, pk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := r.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String("mmsgate-messages"),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

// TestForgedCheckOfAnUnknownID: a check of an id never sent is dropped at
// once, publishes nothing and creates no item (today it created
// trk#<its tracking id> and published unconfirmed).
func TestForgedCheckOfAnUnknownID(t *testing.T) {
	r := newRig(t)
	r.forge(t, "ghost", "T-ghost", r.clock.now().Add(-time.Hour))
	r.forge(t, "ghost-nt", "", r.clock.now().Add(-time.Hour))
	r.run(t, time.Hour, time.Minute)
	if got := r.pub.kinds(); len(got) != 0 {
		t.Errorf("events %v; want none", got)
	}
	for _, pk := range []string{"trk#T-ghost", "msg#ghost", "msg#ghost-nt"} {
		if it := r.item(t, pk); it != nil {
			t.Errorf("%s created: %v", pk, it)
		}
	}
	if n := r.q.pending(); n != 0 {
		t.Errorf("%d checks left on the queue; want them dropped", n)
	}
}

// TestForgedPastDueFiresOnTime: a copy of a real check with a past due
// does not make unconfirmed go out before the record's due (acceptance +
// RECEIPT_WINDOW); the request still gets exactly one.
func TestForgedPastDueFiresOnTime(t *testing.T) {
	for name, trk := range map[string]string{"with a tracking id": "T-e", "NO_TRACKINGID": ""} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t)
			accepted := r.clock.now()
			r.accept(t, "e", trk, 20*time.Minute)
			r.forge(t, "e", trk, accepted.Add(-time.Hour))
			r.run(t, 20*time.Minute-time.Second, 10*time.Second)
			if got := r.pub.kinds(); slicesHas(got, delivery.Unconfirmed) {
				t.Fatalf("unconfirmed before the record's due: %v", got)
			}
			r.run(t, time.Hour, 10*time.Second)
			if diff := cmp.Diff([]string{"e:accepted:", "e:unconfirmed:accepted"}, r.pub.kinds()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// TestForgedCheckAfterDelivered: a check naming no tracking id, or
// another one, cannot produce unconfirmed for a delivered request: the
// tracking id is the record's.
func TestForgedCheckAfterDelivered(t *testing.T) {
	for name, forged := range map[string]string{"no tracking id": "", "a wrong tracking id": "T-other", "an unkeyable one": strings.Repeat("T", 3000)} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t)
			r.accept(t, "d", "T-d", 20*time.Minute)
			r.postback(t, "N102", "T-d")
			r.forge(t, "d", forged, r.clock.now().Add(-time.Hour))
			r.run(t, time.Hour, time.Minute)
			want := []string{"d:accepted:", "d:delivered:status of N102"}
			if diff := cmp.Diff(want, r.pub.kinds()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if it := r.item(t, "trk#T-other"); it != nil {
				t.Errorf("trk#T-other created: %v", it)
			}
		})
	}
}

// TestForgedCheckCannotCrossRequests: a check of A naming B's tracking id
// neither marks B's tracking item nor takes B's unconfirmed: each request
// gets its own, once.
func TestForgedCheckCannotCrossRequests(t *testing.T) {
	r := newRig(t)
	r.accept(t, "A", "T-A", 20*time.Minute)
	r.accept(t, "B", "T-B", 20*time.Minute)
	r.forge(t, "A", "T-B", r.clock.now().Add(-time.Hour))
	r.run(t, time.Hour, time.Minute)
	want := []string{"A:accepted:", "B:accepted:", "A:unconfirmed:accepted", "B:unconfirmed:accepted"}
	if diff := cmp.Diff(want, r.pub.kinds(), cmpSorted); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	for _, e := range r.pub.events {
		if e.Event == delivery.Unconfirmed && e.TrackingID != "T-"+e.ID {
			t.Errorf("%s's unconfirmed names tracking id %q", e.ID, e.TrackingID)
		}
	}
}

// TestUnkeyableCheckDropped: a check whose id cannot be a key (over
// DynamoDB's 2,048 bytes, or not a request id at all) is dropped at once,
// logged and counted, instead of failing every 30 s for hours.
func TestUnkeyableCheckDropped(t *testing.T) {
	for name, id := range map[string]string{"over 2,048 bytes": strings.Repeat("x", 3000), "over 64 characters": strings.Repeat("y", 65),
		"not ASCII": "ïd", "a NUL": "a\x00b"} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t)
			var metrics bytes.Buffer
			r.h.d.Metrics = emf.New(&metrics, "mmsgate", nil)
			r.forge(t, id, "T", r.clock.now().Add(-time.Hour))
			ev := r.q.receive()
			resp, err := r.h.Handle(context.Background(), ev)
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("Handle = %+v, %v; want the check dropped", resp, err)
			}
			if !strings.Contains(metrics.String(), `"InvalidCheck"`) {
				t.Errorf("metrics %s; want InvalidCheck counted", metrics.String())
			}
			if len(r.pub.kinds()) != 0 {
				t.Errorf("events %v; want none", r.pub.kinds())
			}
		})
	}
}

// TestCheckIgnoresQueueTrackingIDForNoTrackingID: a request accepted
// without a tracking id, checked with a forged one, is still marked on its
// own record (no tracking item is created) and gets one unconfirmed.
func TestCheckIgnoresQueueTrackingIDForNoTrackingID(t *testing.T) {
	r := newRig(t)
	r.accept(t, "n", "", 20*time.Minute)
	r.forge(t, "n", "T-forged", r.clock.now().Add(-time.Hour))
	r.run(t, time.Hour, time.Minute)
	if diff := cmp.Diff([]string{"n:accepted:", "n:unconfirmed:accepted"}, r.pub.kinds()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if it := r.item(t, "trk#T-forged"); it != nil {
		t.Errorf("trk#T-forged created: %v", it)
	}
}
