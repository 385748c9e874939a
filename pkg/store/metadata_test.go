package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// rawMD is the md attribute of item pk, decoded; nil when absent.
func rawMD(t *testing.T, db dynamo, pk string) map[string]string {
	t.Helper()
	v, ok := rawItem(t, db, pk)["md"]
	if !ok {
		return nil
	}
	sv, ok := v.(*types.AttributeValueMemberS)
	if !ok {
		t.Fatalf("%s md is %T, want a String", pk, v)
	}
	var md map[string]string
	if err := json.Unmarshal([]byte(sv.Value), &md); err != nil {
		t.Fatalf("%s md %q: %v", pk, sv.Value, err)
	}
	return md
}

// TestMetadataKept: a request's metadata is written once on msg# by its
// first claim (a redelivery carrying other metadata, or none, changes
// nothing), kept through every transition, and on trk# by Link, where the
// postback's one write-and-read (Joined) returns it, settled or not; a
// request without metadata leaves no md anywhere.
func TestMetadataKept(t *testing.T) {
	md := map[string]string{"orderId": "8812", "tenant:x.y-z_1": `a "quoted" <é> value`, "empty": ""}
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			st, db := b.st, b.db
			c := &clock{t: time.Now().Truncate(time.Millisecond)}
			st.SetClock(c.now)
			ctx := context.Background()

			m := mustClaim(t, st, "md1", store.Claim{Owner: "a", Lease: c.in(time.Minute), Metadata: md})
			if diff := cmp.Diff(md, m.About().Metadata); diff != "" {
				t.Errorf("claimed record's metadata (-want +got):\n%s", diff)
			}
			if ok, err := st.Release(ctx, "md1", "a", store.Outcome{Attempt: 1, Code: "E503"}); err != nil || !ok {
				t.Fatalf("Release = %v, %v", ok, err)
			}
			m = mustClaim(t, st, "md1", store.Claim{Owner: "b", Lease: c.in(time.Minute), Metadata: map[string]string{"orderId": "forged"}})
			if diff := cmp.Diff(md, m.Metadata); diff != "" {
				t.Errorf("a redelivery's other metadata replaced the first (-want +got):\n%s", diff)
			}
			won, m, err := st.Accept(ctx, "md1", "b", c.in(time.Minute), store.Outcome{Attempt: 2, TrackingID: "T-md1", To: "1555"})
			if err != nil || !won {
				t.Fatalf("Accept = %v, %v", won, err)
			}
			if diff := cmp.Diff(md, m.About().Metadata); diff != "" {
				t.Errorf("accepted record's metadata (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(md, rawMD(t, db, "msg#md1")); diff != "" {
				t.Errorf("msg# md, as JSON (-want +got):\n%s", diff)
			}

			// trk#: Link keeps it; the postback's one write returns it.
			if err := st.Link(ctx, "T-md1", "md1", m.Metadata); err != nil {
				t.Fatal(err)
			}
			d, j, err := st.Postback(ctx, "T-md1", "N101_a", delivery.RankSent, delivery.Sent, "pb1", c.in(time.Minute))
			if err != nil || d != store.Emit || j.Settled {
				t.Fatalf("Postback = %v, %+v, %v", d, j, err)
			}
			if diff := cmp.Diff(md, j.Metadata); diff != "" {
				t.Errorf("Joined.Metadata before settling (-want +got):\n%s", diff)
			}
			if err := st.PostbackDone(ctx, "T-md1", "N101_a", "pb1", m.About()); err != nil {
				t.Fatal(err)
			}
			d, j, err = st.Postback(ctx, "T-md1", "N102_b", delivery.RankFinal, delivery.Delivered, "pb2", c.in(time.Minute))
			if err != nil || d != store.Emit || !j.Settled {
				t.Fatalf("Postback after settling = %v, %+v, %v", d, j, err)
			}
			want := delivery.About{ID: "md1", TrackingID: "T-md1", To: "1555", Metadata: md}
			if diff := cmp.Diff(want, j.About); diff != "" {
				t.Errorf("settled Joined.About (-want +got):\n%s", diff)
			}
			// Kept once on trk#: not in about as well.
			if about, ok := rawItem(t, db, "trk#T-md1")["about"].(*types.AttributeValueMemberM); !ok || about.Value["md"] != nil {
				t.Errorf("trk# about = %#v, want it without md", rawItem(t, db, "trk#T-md1")["about"])
			}

			// A link made without metadata: the settling postback fills it,
			// and never replaces one already there.
			mustClaim(t, st, "md2", store.Claim{Owner: "a", Lease: c.in(time.Minute), Metadata: md})
			_, m2, _ := st.Accept(ctx, "md2", "a", c.in(time.Minute), store.Outcome{Attempt: 1, TrackingID: "T-md2"})
			if err := st.Link(ctx, "T-md2", "md2", nil); err != nil {
				t.Fatal(err)
			}
			if got := rawMD(t, db, "trk#T-md2"); got != nil {
				t.Errorf("trk# md of a link without metadata = %v", got)
			}
			if _, _, err := st.Postback(ctx, "T-md2", "N101_a", delivery.RankSent, delivery.Sent, "pb1", c.in(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := st.PostbackDone(ctx, "T-md2", "N101_a", "pb1", m2.About()); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(md, rawMD(t, db, "trk#T-md2")); diff != "" {
				t.Errorf("trk# md filled by PostbackDone (-want +got):\n%s", diff)
			}
			other := m2.About()
			other.Metadata = map[string]string{"orderId": "other"}
			if _, _, err := st.Postback(ctx, "T-md2", "N102_b", delivery.RankFinal, delivery.Delivered, "pb2", c.in(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := st.PostbackDone(ctx, "T-md2", "N102_b", "pb2", other); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(md, rawMD(t, db, "trk#T-md2")); diff != "" {
				t.Errorf("trk# md replaced by a later PostbackDone (-want +got):\n%s", diff)
			}

			// None: no md on either item, none in the events' About.
			mustClaim(t, st, "md3", store.Claim{Owner: "a", Lease: c.in(time.Minute), Metadata: map[string]string{}})
			_, m3, _ := st.Accept(ctx, "md3", "a", c.in(time.Minute), store.Outcome{Attempt: 1, TrackingID: "T-md3"})
			if err := st.Link(ctx, "T-md3", "md3", m3.Metadata); err != nil {
				t.Fatal(err)
			}
			_, j3, _ := st.Postback(ctx, "T-md3", "N101_a", delivery.RankSent, delivery.Sent, "pb1", c.in(time.Minute))
			if m3.Metadata != nil || j3.Metadata != nil || rawMD(t, db, "msg#md3") != nil || rawMD(t, db, "trk#T-md3") != nil {
				t.Errorf("a request without metadata: record %v, joined %v", m3.Metadata, j3.Metadata)
			}
		})
	}
}

// TestMetadataScheduled: a scheduled request's metadata is on its record
// from RecordSchedule (its scheduled event, and its canceled event when a
// cancel wins), and stays through the hand-off and the claim that follows;
// a cancel's tombstone, made before any request, has none to give.
func TestMetadataScheduled(t *testing.T) {
	md := map[string]string{"orderId": "8812"}
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			st := b.st
			c := &clock{t: time.Now().Truncate(time.Millisecond)}
			st.SetClock(c.now)
			ctx := context.Background()
			sendAt := c.in(time.Hour)
			for _, id := range []string{"s-md", "s-cancel"} {
				won, sc, err := st.RecordSchedule(ctx, id, store.ScheduleRequest{Body: `{"id":"` + id + `"}`, SendAt: sendAt,
					To: "1555", Metadata: md, Owner: "d1", Hold: c.in(time.Minute)})
				if err != nil || !won {
					t.Fatalf("RecordSchedule(%s) = %v, %v", id, won, err)
				}
				if diff := cmp.Diff(md, delivery.New(sc.PendingEvent, sc.About(), c.now()).Metadata); diff != "" {
					t.Errorf("scheduled event's metadata (-want +got):\n%s", diff)
				}
				if err := st.ScheduledEventSent(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			canceled := mustCancel(t, st, "s-cancel", "c1", c.in(time.Minute))
			if diff := cmp.Diff(md, canceled.About().Metadata); diff != "" {
				t.Errorf("canceled record's metadata (-want +got):\n%s", diff)
			}
			c.add(time.Hour)
			if applied, _, err := st.Unschedule(ctx, "s-md", c.now()); err != nil || !applied {
				t.Fatalf("Unschedule = %v, %v", applied, err)
			}
			m := mustClaim(t, st, "s-md", store.Claim{Owner: "a", Lease: c.in(time.Minute)}) // the body's delivery
			if diff := cmp.Diff(md, m.Metadata); diff != "" {
				t.Errorf("claimed after the hand-off (-want +got):\n%s", diff)
			}
			tomb := mustCancel(t, st, "never-seen", "c1", c.in(time.Minute))
			if tomb.Metadata != nil {
				t.Errorf("tombstone metadata = %v", tomb.Metadata)
			}
			if ok, m, _ := st.Claim(ctx, "never-seen", store.Claim{Owner: "a", Lease: c.in(time.Minute), Metadata: md}); ok || m.Metadata != nil {
				t.Errorf("the request after its tombstone: claimed %v, metadata %v", ok, m.Metadata)
			}
		})
	}
}
