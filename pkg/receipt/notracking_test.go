package receipt_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/memdb"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/postback"
	"github.com/mmsgate/mmsgate/pkg/receipt"
	"github.com/mmsgate/mmsgate/pkg/secret"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// TestNoTrackingIDReceiptsThroughClientReference: a request accepted
// without a tracking id (NO_TRACKINGID) whose postbacks joined through
// CLIENT_REFERENCE: once its final receipt is out, its check publishes
// nothing; when the check comes first, the receipt still follows it. The
// same when the postbacks carry a TRACKINGID too long to key (2,100 bytes,
// the one Skycore accepted the request with: recorded NO_TRACKINGID), under
// its surrogate key.
func TestNoTrackingIDReceiptsThroughClientReference(t *testing.T) {
	tests := map[string]struct {
		steps []string
		want  []string
	}{
		"delivered, then the check": {steps: []string{"N101", "N102", "check"},
			want: []string{"nt:sent:N101", "nt:delivered:N102"}},
		"sent, then the check: unconfirmed with status sent": {steps: []string{"N101", "check", "N102", "check"},
			want: []string{"nt:sent:N101", "nt:unconfirmed:sent", "nt:delivered:N102"}},
		"the check first, then N101, then a duplicate check: one unconfirmed": {steps: []string{"check", "N101", "check"},
			want: []string{"nt:unconfirmed:accepted", "nt:sent:N101"}},
		"the check first, then the receipt": {steps: []string{"check", "N102", "check"},
			want: []string{"nt:unconfirmed:accepted", "nt:delivered:N102"}},
	}
	for tname, tid := range map[string]string{"": "T-sky", "unkeyable TRACKINGID: ": strings.Repeat("K", 2100)} {
		for name, tt := range tests {
			t.Run(tname+name, func(t *testing.T) {
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
				rc := receipt.NewHandler(receipt.Config{QueueURL: "receipt-queue", Window: time.Nanosecond},
					receipt.Deps{Store: st, Events: log, Queue: noQueue{}})
				st.Claim(ctx, "nt", store.Claim{Owner: "sender", Lease: time.Now().Add(time.Minute)})
				st.Accept(ctx, "nt", "sender", time.Now().Add(time.Minute), store.Outcome{Code: "NO_TRACKINGID", To: "17743199144", MMSID: "48211"})
				st.EventSent(ctx, "nt")
				for i, s := range tt.steps {
					if s == "check" {
						body, _ := json.Marshal(receipt.Check{ID: "nt", Due: delivery.Stamp(time.Now())})
						resp, err := rc.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m", ReceiptHandle: "h", Body: string(body)}}})
						if err != nil || len(resp.BatchItemFailures) != 0 {
							t.Fatalf("step %d: receipt check %+v, %v; want done", i, resp, err)
						}
						continue
					}
					n := postback.Notification{Origin: "MMS_MT", Code: s, Status: s, SentAs: "MMS", MMSID: "48211", From: "60856",
						To: "17743199144", TrackingID: tid, ClientReference: "nt", Timestamp: "2026-11-24T16:02:11-05:00"}
					resp, err := pb.Handle(ctx, events.APIGatewayV2HTTPRequest{
						RawPath: "/skycore/postbacks/tok", PathParameters: map[string]string{"token": "tok"},
						Headers: map[string]string{"content-type": "text/xml"}, Body: string(n.Marshal()),
						RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST"}},
					})
					if err != nil || resp.StatusCode != 200 {
						t.Fatalf("step %d: postback %s: %d, %v", i, s, resp.StatusCode, err)
					}
				}
				if diff := cmp.Diff(tt.want, log.events); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestNoTrackingIDPostbackWaitsForAPublishingCheck: a postback of a
// NO_TRACKINGID request that comes while a check is publishing its
// unconfirmed event is answered 503 (after linking its tracking id); its
// retry still notes the tracking id for the check, publishes its receipt
// after the unconfirmed event, and a later check publishes nothing.
func TestNoTrackingIDPostbackWaitsForAPublishingCheck(t *testing.T) {
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
	rc := receipt.NewHandler(receipt.Config{QueueURL: "receipt-queue", Window: time.Nanosecond},
		receipt.Deps{Store: st, Events: log, Queue: noQueue{}})
	st.Claim(ctx, "nt", store.Claim{Owner: "sender", Lease: time.Now().Add(time.Minute)})
	st.Accept(ctx, "nt", "sender", time.Now().Add(time.Minute), store.Outcome{Code: "NO_TRACKINGID", To: "17743199144", MMSID: "48211"})
	st.EventSent(ctx, "nt")
	post := func(code string) int {
		t.Helper()
		n := postback.Notification{Origin: "MMS_MT", Code: code, Status: code, SentAs: "MMS", MMSID: "48211", From: "60856",
			To: "17743199144", TrackingID: "T-sky", ClientReference: "nt", Timestamp: "2026-11-24T16:02:11-05:00"}
		resp, err := pb.Handle(ctx, events.APIGatewayV2HTTPRequest{
			RawPath: "/skycore/postbacks/tok", PathParameters: map[string]string{"token": "tok"},
			Headers: map[string]string{"content-type": "text/xml"}, Body: string(n.Marshal()),
			RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	// A check mid-publish: it holds the request's unconfirmed marker.
	if d, _, err := st.CheckReceipt(ctx, "nt", "", "check-1", time.Now().Add(30*time.Second)); err != nil || d != store.ReceiptEmit {
		t.Fatalf("CheckReceipt = %v, %v", d, err)
	}
	if code := post("N101"); code != 503 {
		t.Fatalf("postback during the check: %d, want 503", code)
	}
	log.Publish(ctx, delivery.Event{ID: "nt", Event: delivery.Unconfirmed, Status: "accepted"})
	if err := st.ReceiptDone(ctx, "nt", "", "check-1"); err != nil {
		t.Fatal(err)
	}
	if code := post("N101"); code != 200 {
		t.Fatalf("postback retried: %d, want 200", code)
	}
	if tg, err := st.CheckTarget(ctx, "nt"); err != nil || tg == nil {
		t.Fatalf("CheckTarget = %+v, %v", tg, err)
	}
	body, _ := json.Marshal(receipt.Check{ID: "nt", Due: delivery.Stamp(time.Now())})
	if resp, err := rc.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m2", ReceiptHandle: "h", Body: string(body)}}}); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("second check %+v, %v", resp, err)
	}
	if code := post("N102"); code != 200 {
		t.Fatalf("N102: %d", code)
	}
	want := []string{"nt:unconfirmed:accepted", "nt:sent:N101", "nt:delivered:N102"}
	if diff := cmp.Diff(want, log.events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestNoTrackingIDPostbackAfterAReleasedCheck: the same, but the check
// could not publish (released): the postback's retry, its tracking id
// linked already, must still note it, so that the next check sees the
// final receipt and publishes nothing.
func TestNoTrackingIDPostbackAfterAReleasedCheck(t *testing.T) {
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
	rc := receipt.NewHandler(receipt.Config{QueueURL: "receipt-queue", Window: time.Nanosecond},
		receipt.Deps{Store: st, Events: log, Queue: noQueue{}})
	st.Claim(ctx, "nt", store.Claim{Owner: "sender", Lease: time.Now().Add(time.Minute)})
	st.Accept(ctx, "nt", "sender", time.Now().Add(time.Minute), store.Outcome{Code: "NO_TRACKINGID", To: "17743199144", MMSID: "48211"})
	st.EventSent(ctx, "nt")
	post := func(code string) int {
		t.Helper()
		n := postback.Notification{Origin: "MMS_MT", Code: code, Status: code, SentAs: "MMS", MMSID: "48211", From: "60856",
			To: "17743199144", TrackingID: "T-sky", ClientReference: "nt", Timestamp: "2026-11-24T16:02:11-05:00"}
		resp, err := pb.Handle(ctx, events.APIGatewayV2HTTPRequest{
			RawPath: "/skycore/postbacks/tok", PathParameters: map[string]string{"token": "tok"},
			Headers: map[string]string{"content-type": "text/xml"}, Body: string(n.Marshal()),
			RequestContext: events.APIGatewayV2HTTPRequestContext{HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: "POST"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	// A check mid-publish: it holds the request's unconfirmed marker.
	if d, _, err := st.CheckReceipt(ctx, "nt", "", "check-1", time.Now().Add(30*time.Second)); err != nil || d != store.ReceiptEmit {
		t.Fatalf("CheckReceipt = %v, %v", d, err)
	}
	if code := post("N102"); code != 503 {
		t.Fatalf("postback during the check: %d, want 503", code)
	}
	if err := st.ReceiptRelease(ctx, "nt", "", "check-1"); err != nil {
		t.Fatal(err)
	}
	if code := post("N102"); code != 200 {
		t.Fatalf("postback retried: %d, want 200", code)
	}
	if tg, err := st.CheckTarget(ctx, "nt"); err != nil || tg == nil || tg.Tracking != "T-sky" {
		t.Fatalf("CheckTarget = %+v, %v; want tracking T-sky", tg, err)
	}
	body, _ := json.Marshal(receipt.Check{ID: "nt", Due: delivery.Stamp(time.Now())})
	if resp, err := rc.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m2", ReceiptHandle: "h", Body: string(body)}}}); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("second check %+v, %v", resp, err)
	}
	want := []string{"nt:delivered:N102"}
	if diff := cmp.Diff(want, log.events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}
