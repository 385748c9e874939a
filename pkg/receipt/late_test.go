package receipt_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/memdb"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/postback"
	"github.com/mmsgate/mmsgate/pkg/receipt"
	"github.com/mmsgate/mmsgate/pkg/secret"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// Function-field fakes for the postback handler and the receipt handler
// on one table and one events queue.
type (
	tokens   struct{ get func() secret.Values }
	eventLog struct {
		mu     sync.Mutex
		events []string
	}
	noQueue struct{}
)

func (f tokens) Get(context.Context) (secret.Values, error) { return f.get(), nil }

func (l *eventLog) Publish(_ context.Context, e delivery.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e.ID+":"+e.Event+":"+e.Status)
	return nil
}

func (noQueue) ChangeMessageVisibility(context.Context, *sqs.ChangeMessageVisibilityInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

// TestLateReceiptThroughPostbackHandler: N101 through the postback
// function, the due check publishes unconfirmed (status sent), then N102
// through the postback function still publishes delivered; a later
// receipt check of the same request publishes nothing.
func TestLateReceiptThroughPostbackHandler(t *testing.T) {
	ctx := context.Background()
	db := memdb.New()
	if err := store.CreateTable(ctx, db, "mmsgate-messages"); err != nil {
		t.Fatal(err)
	}
	st := store.New(db, "mmsgate-messages", 0)
	log := &eventLog{}
	pb := postback.NewHandler(postback.Deps{
		Tokens: tokens{get: func() secret.Values { return secret.Values{PostbackToken: "tok"} }}, Store: st, Events: log,
	})
	rc := receipt.NewHandler(receipt.Config{QueueURL: "receipt-queue", Window: time.Nanosecond}, receipt.Deps{Store: st, Events: log, Queue: noQueue{}})

	st.Claim(ctx, "late", store.Claim{Owner: "sender", Lease: time.Now().Add(time.Minute)})
	st.Accept(ctx, "late", "sender", time.Now().Add(time.Minute), store.Outcome{TrackingID: "T-late", To: "17743199144", MMSID: "48211"})
	st.EventSent(ctx, "late")
	if err := st.Link(ctx, "T-late", "late", nil); err != nil {
		t.Fatal(err)
	}
	post := func(code string) {
		t.Helper()
		n := postback.Notification{Origin: "MMS_MT", Code: code, Status: code, SentAs: "MMS", MMSID: "48211", From: "60856",
			To: "17743199144", TrackingID: "T-late", Timestamp: "2026-11-24T16:02:11-05:00"}
		resp, err := pb.Handle(ctx, events.APIGatewayV2HTTPRequest{
			RawPath: "/skycore/postbacks/tok", PathParameters: map[string]string{"token": "tok"},
			Headers: map[string]string{"content-type": "text/xml"}, Body: string(n.Marshal()),
			RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST"}},
		})
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("postback %s: %d, %v", code, resp.StatusCode, err)
		}
	}
	check := func(msgID string) {
		t.Helper()
		body, _ := json.Marshal(receipt.Check{ID: "late", TrackingID: "T-late", Due: delivery.Stamp(time.Now().Add(-time.Second))})
		resp, err := rc.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{{MessageId: msgID, ReceiptHandle: "h-" + msgID, Body: string(body)}}})
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("receipt check: %+v, %v; want done", resp, err)
		}
	}
	post("N101")
	check("m1")
	post("N102")
	post("E102")
	check("m2")
	want := []string{"late:sent:N101", "late:unconfirmed:sent", "late:delivered:N102"}
	if diff := cmp.Diff(want, log.events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}
