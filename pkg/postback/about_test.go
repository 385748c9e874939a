package postback

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// TestAboutInEveryEvent: what a request's record tells (to, from, mmsId,
// metadata) is in every event the postback function publishes, of every kind, even
// when Skycore's postback leaves those fields out: the send events a
// postback flushes (accepted, rejected, expired, through
// recorded.Path.Pending), the receipts joined by reading the record, and
// the receipts of a settled tracking id, which read it from the tracking
// item instead. A field added to delivery.About must show up here too.
func TestAboutInEveryEvent(t *testing.T) {
	ctx := context.Background()
	hs := newHarness(t)
	bare := func(code, trackingID, ref string) string { // no to, from or mmsId
		n := Notification{Origin: "MMS_MT", Code: code, Status: "status of " + code, SentAs: "MMS", TrackingID: trackingID,
			SPID: "0001470", Timestamp: "2026-11-24T16:02:11-05:00", ClientReference: ref}
		return string(n.Marshal())
	}
	md := func(id string) map[string]string { // each id its own, so that none can cross
		return map[string]string{"orderId": "8812-" + id, "tenant": `a "quoted" <é> value`}
	}
	// Each sender recorded its outcome, then died before publishing it.
	for _, r := range []struct {
		id, state string
	}{{"pa", store.StateAccepted}, {"pr", store.StateRejected}, {"pe", store.StateExpired}} {
		if _, _, err := hs.store.Claim(ctx, r.id, store.Claim{Owner: "sender", Lease: hs.now().Add(time.Minute), Metadata: md(r.id)}); err != nil {
			t.Fatal(err)
		}
		o := store.Outcome{TrackingID: "T-" + r.id, Code: "E110", To: "17743199144", From: "60857", MMSID: "48211"}
		write := map[string]func(context.Context, string, string, time.Time, store.Outcome) (bool, *store.Message, error){
			store.StateAccepted: hs.store.Accept, store.StateRejected: hs.store.Reject, store.StateExpired: hs.store.Expire,
		}[r.state]
		if r.state == store.StateAccepted {
			o.Code = ""
		}
		if _, _, err := write(ctx, r.id, "sender", hs.now().Add(-time.Second), o); err != nil {
			t.Fatal(err)
		}
	}
	for _, pb := range []struct{ code, trackingID, ref string }{
		{"N101", "T-pa", "pa"}, // flushes accepted, then sent (record read)
		{"N102", "T-pa", ""},   // settled: delivered, About from the tracking item
		{"N101", "T-pr", "pr"}, // flushes rejected, then sent
		{"E102", "T-pr", ""},   // undelivered
		{"N101", "T-pe", "pe"}, // flushes expired, then sent
		{"E101", "T-pe", ""},   // failed
	} {
		if resp := hs.invoke(t, post(bare(pb.code, pb.trackingID, pb.ref))); resp.StatusCode != 200 {
			t.Fatalf("%s %s: status %d", pb.code, pb.trackingID, resp.StatusCode)
		}
	}
	evs, err := hs.drain()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]delivery.About{}
	for _, e := range evs {
		got[e.ID+" "+e.Event] = e.About()
	}
	want := map[string]delivery.About{}
	for _, k := range []struct{ id, kind string }{
		{"pa", delivery.Accepted}, {"pa", delivery.Sent}, {"pa", delivery.Delivered},
		{"pr", delivery.Rejected}, {"pr", delivery.Sent}, {"pr", delivery.Undelivered},
		{"pe", delivery.Expired}, {"pe", delivery.Sent}, {"pe", delivery.Failed},
	} {
		want[k.id+" "+k.kind] = delivery.About{ID: k.id, TrackingID: "T-" + k.id, To: "17743199144", From: "60857", MMSID: "48211",
			Metadata: md(k.id)}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("what each event says of its request (-want +got):\n%s", diff)
	}
}
