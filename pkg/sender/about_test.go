package sender

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/memdb"
	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// TestAboutInEveryEvent: what the request tells (to, from, mmsId,
// metadata), kept on its record, is in every event the sender publishes, of
// every kind, each through the sender's real path (the recorded ones
// through recorded.Path.Pending on the real store). A field added to
// delivery.About must show up here too. Metadata is absent when the request
// had none, and never echoed when it broke its limits.
func TestAboutInEveryEvent(t *testing.T) {
	ctx := context.Background()
	db := memdb.New()
	if err := store.CreateTable(ctx, db, "mmsgate-messages"); err != nil {
		t.Fatal(err)
	}
	st := store.New(db, "mmsgate-messages", 0)
	evs := &fakeEvents{}
	answers := map[string]func() (*skycore.Response, error){
		"acc": func() (*skycore.Response, error) {
			return &skycore.Response{Status: "Success", TrackingID: "T-acc"}, nil
		},
		"rej": func() (*skycore.Response, error) {
			return nil, &apperr.Error{Code: "E110", Class: apperr.Permanent, Message: "invalid number"}
		},
		"ret": func() (*skycore.Response, error) {
			return nil, &apperr.Error{Code: "E503", Class: apperr.Retry, Message: "busy"}
		},
		"exp": func() (*skycore.Response, error) {
			return nil, &apperr.Error{Code: "E503", Class: apperr.Retry, Message: "busy"}
		},
		"bare": func() (*skycore.Response, error) {
			return &skycore.Response{Status: "Success", TrackingID: "T-bare"}, nil
		},
	}
	h := NewHandler(Config{Policy: sendreq.Policy{DefaultFrom: "60856"}, RetryWindow: time.Hour, SendQueueURL: "send", DLQURL: "dlq"}, Deps{
		Keys: fakeKeys{}, Store: st, Events: evs, Queue: fakeQueue{},
		Skycore: fakeSkycore{send: func(r *sendreq.Request) (*skycore.Response, error) { return answers[r.ID]() }},
	})
	md := func(id string) map[string]string { // each id its own, so that none can cross
		return map[string]string{"orderId": "8812-" + id, "tenant:x.y-z_1": `a "quoted" <é> value`}
	}
	want := func(id, trackingID string) delivery.About {
		return delivery.About{ID: id, TrackingID: trackingID, To: "17743199144", From: "60857", MMSID: "48211", Metadata: md(id)}
	}
	mdJSON := func(id string) string {
		b, err := json.Marshal(md(id))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	extra := map[string]string{"bare": "", "bad": `,"metadata":{"order id":"1"}`} // none; a key E100 refuses
	for _, id := range []string{"acc", "rej", "ret", "exp"} {
		extra[id] = `,"metadata":` + mdJSON(id)
	}
	var recs []events.SQSMessage
	for _, id := range []string{"acc", "rej", "ret", "exp", "bare", "bad"} {
		sent := time.Now()
		if id == "exp" {
			sent = sent.Add(-2 * time.Hour) // past the retry window
		}
		recs = append(recs, events.SQSMessage{MessageId: "m-" + id, ReceiptHandle: "h-" + id,
			Body:       `{"id":"` + id + `","to":"17743199144","from":"60857","mmsId":48211` + extra[id] + `}`,
			Attributes: map[string]string{"SentTimestamp": strconv.FormatInt(sent.UnixMilli(), 10), "ApproximateReceiveCount": "1"}})
	}
	if _, err := h.Handle(ctx, events.SQSEvent{Records: recs}); err != nil {
		t.Fatal(err)
	}
	got := map[string]delivery.About{}
	for _, e := range evs.events {
		got[e.ID+" "+e.Event] = e.About()
	}
	bare, bad := want("bare", "T-bare"), want("bad", "")
	bare.Metadata, bad.Metadata = nil, nil
	if diff := cmp.Diff(map[string]delivery.About{
		"acc " + delivery.Accepted: want("acc", "T-acc"), "rej " + delivery.Rejected: want("rej", ""),
		"ret " + delivery.Retrying: want("ret", ""), "exp " + delivery.Expired: want("exp", ""),
		"bare " + delivery.Accepted: bare, "bad " + delivery.Rejected: bad,
	}, got); diff != "" {
		t.Errorf("what each event kind says of its request (-want +got):\n%s", diff)
	}
}

// TestMetadataIsTheRecords: a body delivered under an id whose first
// delivery recorded its outcome and died before publishing it publishes
// that pending event with the first request's metadata, never its own (nor
// any, when the first had none); its to, from and mmsId still fill what
// the record lacks. A retried id's retrying event echoes its first claim's
// metadata too.
func TestMetadataIsTheRecords(t *testing.T) {
	ctx := context.Background()
	db := memdb.New()
	if err := store.CreateTable(ctx, db, "mmsgate-messages"); err != nil {
		t.Fatal(err)
	}
	st := store.New(db, "mmsgate-messages", 0)
	first := map[string]string{"orderId": "first"}
	for id, md := range map[string]map[string]string{"had": first, "none": nil} {
		if _, _, err := st.Claim(ctx, id, store.Claim{Owner: "died", Lease: time.Now().Add(time.Minute), Metadata: md}); err != nil {
			t.Fatal(err)
		}
		if won, _, err := st.Accept(ctx, id, "died", time.Now().Add(-time.Second), store.Outcome{Attempt: 1, TrackingID: "T-" + id}); err != nil || !won {
			t.Fatalf("Accept = %v, %v", won, err)
		}
	}
	if _, _, err := st.Claim(ctx, "ret", store.Claim{Owner: "first", Lease: time.Now().Add(time.Minute), Metadata: first}); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.Release(ctx, "ret", "first", store.Outcome{Attempt: 1, Code: "E503"}); err != nil || !ok {
		t.Fatalf("Release = %v, %v", ok, err)
	}
	evs := &fakeEvents{}
	h := NewHandler(Config{Policy: sendreq.Policy{DefaultFrom: "60856"}, RetryWindow: time.Hour, SendQueueURL: "send", DLQURL: "dlq"}, Deps{
		Keys: fakeKeys{}, Store: st, Events: evs, Queue: fakeQueue{},
		Skycore: fakeSkycore{send: func(r *sendreq.Request) (*skycore.Response, error) {
			if r.ID != "ret" {
				t.Errorf("called Skycore for %s, already accepted", r.ID)
			}
			return nil, &apperr.Error{Code: "E503", Class: apperr.Retry, Message: "busy"}
		}},
	})
	var recs []events.SQSMessage
	for _, id := range []string{"had", "none", "ret"} {
		recs = append(recs, events.SQSMessage{MessageId: "m-" + id, ReceiptHandle: "h-" + id,
			Body:       `{"id":"` + id + `","to":"17743199144","mmsId":48211,"metadata":{"orderId":"second"}}`,
			Attributes: map[string]string{"SentTimestamp": strconv.FormatInt(time.Now().UnixMilli(), 10), "ApproximateReceiveCount": "1"}})
	}
	if _, err := h.Handle(ctx, events.SQSEvent{Records: recs}); err != nil {
		t.Fatal(err)
	}
	got := map[string]delivery.About{}
	for _, e := range evs.events {
		got[e.ID+" "+e.Event] = e.About()
	}
	if diff := cmp.Diff(map[string]delivery.About{
		"had " + delivery.Accepted:  {ID: "had", TrackingID: "T-had", To: "17743199144", From: "60856", MMSID: "48211", Metadata: first},
		"none " + delivery.Accepted: {ID: "none", TrackingID: "T-none", To: "17743199144", From: "60856", MMSID: "48211"},
		"ret " + delivery.Retrying:  {ID: "ret", To: "17743199144", From: "60856", MMSID: "48211", Metadata: first},
	}, got); diff != "" {
		t.Errorf("the pending events (-want +got):\n%s", diff)
	}
}
