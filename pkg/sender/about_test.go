package sender

import (
	"context"
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

// TestAboutInEveryEvent: what the request tells (to, from, mmsId), kept on
// its record, is in every event the sender publishes, of every kind, each
// through the sender's real path (the recorded ones through
// recorded.Path.Pending on the real store). A field added to
// delivery.About must show up here too.
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
	}
	h := NewHandler(Config{Policy: sendreq.Policy{DefaultFrom: "60856"}, RetryWindow: time.Hour, SendQueueURL: "send", DLQURL: "dlq"}, Deps{
		Keys: fakeKeys{}, Store: st, Events: evs, Queue: fakeQueue{},
		Skycore: fakeSkycore{send: func(r *sendreq.Request) (*skycore.Response, error) { return answers[r.ID]() }},
	})
	want := func(id, trackingID string) delivery.About {
		return delivery.About{ID: id, TrackingID: trackingID, To: "17743199144", From: "60857", MMSID: "48211"}
	}
	var recs []events.SQSMessage
	for _, id := range []string{"acc", "rej", "ret", "exp"} {
		sent := time.Now()
		if id == "exp" {
			sent = sent.Add(-2 * time.Hour) // past the retry window
		}
		recs = append(recs, events.SQSMessage{MessageId: "m-" + id, ReceiptHandle: "h-" + id,
			Body:       `{"id":"` + id + `","to":"17743199144","from":"60857","mmsId":48211}`,
			Attributes: map[string]string{"SentTimestamp": strconv.FormatInt(sent.UnixMilli(), 10), "ApproximateReceiveCount": "1"}})
	}
	if _, err := h.Handle(ctx, events.SQSEvent{Records: recs}); err != nil {
		t.Fatal(err)
	}
	got := map[string]delivery.About{}
	for _, e := range evs.events {
		got[e.Event] = e.About()
	}
	if diff := cmp.Diff(map[string]delivery.About{
		delivery.Accepted: want("acc", "T-acc"), delivery.Rejected: want("rej", ""),
		delivery.Retrying: want("ret", ""), delivery.Expired: want("exp", ""),
	}, got); diff != "" {
		t.Errorf("what each event kind says of its request (-want +got):\n%s", diff)
	}
}
