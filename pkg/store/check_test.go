package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/pkg/store"
)

func rawItem(t *testing.T, db dynamo, pk string) map[string]types.AttributeValue {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(localenv.Table),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

// TestCheckReceiptNeverCreatesNorCrosses: a check naming a tracking id
// with no item creates none; one naming another request's tracking id
// marks nothing of it, and that request's own check still emits.
func TestCheckReceiptNeverCreatesNorCrosses(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			st, ctx := b.st, context.Background()
			c := newClock(st)
			if d, _, err := st.CheckReceipt(ctx, "nobody", "T-nobody", "c1", c.until()); err != nil || d != store.ReceiptGone {
				t.Errorf("CheckReceipt(no item) = %v, %v; want gone", d, err)
			}
			if it := rawItem(t, b.db, "trk#T-nobody"); it != nil {
				t.Errorf("trk#T-nobody created: %v", it)
			}
			accepted(t, st, "cr-a", "T-cr-a")
			accepted(t, st, "cr-b", "T-cr-b")
			if d, _, err := st.CheckReceipt(ctx, "cr-a", "T-cr-b", "c1", c.until()); err != nil || d != store.ReceiptGone {
				t.Errorf("CheckReceipt(A, B's tracking id) = %v, %v; want gone", d, err)
			}
			if d, status, err := st.CheckReceipt(ctx, "cr-b", "T-cr-b", "c2", c.until()); err != nil || d != store.ReceiptEmit || status != "accepted" {
				t.Errorf("CheckReceipt(B) = %v, %q, %v; want emit", d, status, err)
			}
		})
	}
}

// TestCheckTarget: the tracking item a check looks at comes from the
// record: its own tracking id when linked to it, the noted one of its
// postbacks when it has none usable, else none (msg#).
func TestCheckTarget(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			st, ctx := b.st, context.Background()
			if tg, err := st.CheckTarget(ctx, "ct-none"); err != nil || tg != nil {
				t.Fatalf("CheckTarget(no record) = %+v, %v; want nil", tg, err)
			}
			accepted(t, st, "ct-own", "T-ct-own")
			accepted(t, st, "ct-nt", "")
			long := strings.Repeat("L", store.MaxKeyBytes)
			accepted(t, st, "ct-long", "")
			// ct-long as if Skycore had answered an unkeyable tracking id.
			if _, err := b.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(localenv.Table),
				Key:              map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "msg#ct-long"}},
				UpdateExpression: aws.String("SET trackingId = :t"), ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberS{Value: long}},
			}); err != nil {
				t.Fatal(err)
			}
			for id, want := range map[string]string{"ct-own": "T-ct-own", "ct-nt": "", "ct-long": ""} {
				tg, err := st.CheckTarget(ctx, id)
				if err != nil || tg == nil || tg.Tracking != want || tg.AcceptedAt.IsZero() {
					t.Errorf("CheckTarget(%s) = %+v, %v; want tracking %q and an acceptance time", id, tg, err, want)
				}
			}
			for _, id := range []string{"ct-nt", "ct-long"} {
				trk := "T-sky-" + id
				if err := st.Link(ctx, trk, id, nil); err != nil {
					t.Fatal(err)
				}
				if err := st.NoteReceiptTracking(ctx, id, trk); err != nil {
					t.Fatal(err)
				}
				if err := st.NoteReceiptTracking(ctx, id, "T-second"); err != nil { // the first stays
					t.Fatal(err)
				}
				if tg, err := st.CheckTarget(ctx, id); err != nil || tg.Tracking != trk {
					t.Errorf("CheckTarget(%s) after the note = %+v, %v; want %q", id, tg, err, trk)
				}
			}
			// A tracking id linked to another request is not noted: the
			// check marks the request's own record.
			accepted(t, st, "ct-conflict", "")
			if err := st.NoteReceiptTracking(ctx, "ct-conflict", "T-ct-own"); err != nil {
				t.Fatal(err)
			}
			if tg, err := st.CheckTarget(ctx, "ct-conflict"); err != nil || tg.Tracking != "" {
				t.Errorf("CheckTarget(ct-conflict) = %+v, %v; want no tracking item", tg, err)
			}
			if d, _, err := st.CheckReceipt(ctx, "ct-conflict", "", "c1", time.Now().Add(time.Minute)); err != nil || d != store.ReceiptEmit {
				t.Errorf("CheckReceipt(ct-conflict) = %v, %v; want emit on its record", d, err)
			}
			// A record with its own tracking id takes no note.
			if err := st.NoteReceiptTracking(ctx, "ct-own", "T-x"); err != nil {
				t.Fatal(err)
			}
			if it := rawItem(t, b.db, "msg#ct-own"); it["pbTrk"] != nil {
				t.Errorf("ct-own noted %v", it["pbTrk"])
			}
		})
	}
}

// TestNoteWaitsForAPublishingCheck: while a check of a NO_TRACKINGID
// request publishes unconfirmed, its postbacks wait (busy); once it is
// out, they are noted, and a later check sees them.
func TestNoteWaitsForAPublishingCheck(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			st, ctx := b.st, context.Background()
			c := newClock(st)
			accepted(t, st, "nw", "")
			if d, _, err := st.CheckReceipt(ctx, "nw", "", "c1", c.until()); err != nil || d != store.ReceiptEmit {
				t.Fatalf("CheckReceipt = %v, %v", d, err)
			}
			if err := st.Link(ctx, "T-nw", "nw", nil); err != nil {
				t.Fatal(err)
			}
			if err := st.NoteReceiptTracking(ctx, "nw", "T-nw"); !errors.Is(err, store.ErrReceiptCheckBusy) {
				t.Fatalf("NoteReceiptTracking during the check = %v; want busy", err)
			}
			if err := st.ReceiptDone(ctx, "nw", "", "c1"); err != nil {
				t.Fatal(err)
			}
			if err := st.NoteReceiptTracking(ctx, "nw", "T-nw"); err != nil {
				t.Fatalf("NoteReceiptTracking after the check = %v", err)
			}
			// A duplicate check of the same request: its unconfirmed went
			// out already, on msg#; the noted tracking item does not make
			// a second one.
			tg, err := st.CheckTarget(ctx, "nw")
			if err != nil {
				t.Fatal(err)
			}
			if d, _, err := st.CheckReceipt(ctx, "nw", tg.Tracking, "c2", c.until()); err != nil || d != store.ReceiptPublished {
				t.Errorf("duplicate check = %v, %v; want published", d, err)
			}
		})
	}
}
