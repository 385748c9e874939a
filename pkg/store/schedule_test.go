package store_test

import (
	"context"
	"fmt"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/pkg/store"
)

func rawSchedItem(t *testing.T, db dynamo, id string) map[string]types.AttributeValue {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(localenv.Table),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "msg#" + id}}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func numAttr(it map[string]types.AttributeValue, k string) string {
	if v, ok := it[k].(*types.AttributeValueMemberN); ok {
		return v.Value
	}
	return ""
}

// TestScheduleLifecycle: recorded once, its event published once, then in
// the due index at sendAt; never claimable before it is due; due, it is
// claimed as a fresh request whose retry window starts at sendAt.
func TestScheduleLifecycle(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			st := b.st
			c := &clock{t: time.Now().Truncate(time.Millisecond)}
			st.SetClock(c.now)
			ctx := context.Background()
			sendAt := c.in(30 * 24 * time.Hour)
			req := store.ScheduleRequest{Body: `{"id":"s1"}`, SendAt: sendAt, Lane: "bulk", To: "1555", From: "60856", MMSID: "7",
				Owner: "d1", Hold: c.in(time.Minute)}
			won, sc, err := st.RecordSchedule(ctx, "s1", req)
			if err != nil || !won || sc.State != store.StateScheduled || !sc.ScheduledEventPending() || !sc.SendAt.Equal(sendAt) ||
				sc.Body != req.Body || sc.Lane != "bulk" || !sc.First.Equal(sendAt) || !sc.Due.IsZero() {
				t.Fatalf("RecordSchedule = %v, %+v, %v", won, sc, err)
			}
			if ev := delivery.New(sc.PendingEvent, sc.About(), c.now()); ev.Event != "scheduled" || ev.To != "1555" || ev.From != "60856" {
				t.Errorf("scheduled event = %+v", ev)
			}
			// The record outlives its sendAt by the TTL.
			if got, want := numAttr(rawSchedItem(t, b.db, "s1"), "exp"), fmt.Sprint(sendAt.Add(store.DefaultTTL).Unix()); got != want {
				t.Errorf("exp = %s, want %s", got, want)
			}
			// A redelivery of the same request: not recorded again; the event
			// is its recorder's until the hold ends.
			req.Owner = "d2"
			if won, sc, _ := st.RecordSchedule(ctx, "s1", req); won || !sc.ScheduledEventPending() {
				t.Fatalf("second RecordSchedule = %v, %+v", won, sc)
			}
			if took, _, _ := st.TakeEvent(ctx, "s1", "d2", c.in(time.Minute)); took {
				t.Fatal("took a held scheduled event")
			}
			c.add(2 * time.Minute) // d1 died before publishing
			if took, m, _ := st.TakeEvent(ctx, "s1", "d2", c.in(time.Minute)); !took || !m.ScheduledEventPending() {
				t.Fatalf("TakeEvent after the hold = %v, %+v", took, m)
			}
			// Nothing can claim it or hand it off while its event is pending.
			if ok, m, _ := st.Claim(ctx, "s1", store.Claim{Owner: "x", Lease: c.in(time.Minute)}); ok || m.State != store.StateScheduled {
				t.Fatalf("Claim of a scheduled id = %v, %+v", ok, m)
			}
			if applied, _, _ := st.Unschedule(ctx, "s1", sendAt.Add(time.Hour)); applied {
				t.Fatal("unscheduled with its scheduled event pending")
			}
			if err := st.ScheduledEventSent(ctx, "s1"); err != nil {
				t.Fatal(err)
			}
			if err := st.ScheduledEventSent(ctx, "s1"); err != nil { // twice: harmless
				t.Fatal(err)
			}
			it := rawSchedItem(t, b.db, "s1")
			if numAttr(it, "dueMs") != fmt.Sprint(sendAt.UnixMilli()) || it["dueShard"] == nil || it["pendingEvent"] != nil {
				t.Fatalf("after ScheduledEventSent: %v", it)
			}
			// Not due yet: no hand-off.
			if applied, _, _ := st.Unschedule(ctx, "s1", sendAt.Add(-time.Millisecond)); applied {
				t.Fatal("unscheduled before its sendAt")
			}
			// A sweeper claims it from the index; a second one with the same
			// view of the index loses.
			if ok, _, _ := st.ClaimDue(ctx, "s1", sendAt.Add(-time.Second), time.Minute); ok {
				t.Fatal("ClaimDue with a stale dueMs")
			}
			ok, sc, err := st.ClaimDue(ctx, "s1", sendAt, time.Minute)
			if err != nil || !ok || sc.Body != req.Body || !sc.Due.Equal(c.in(time.Minute)) {
				t.Fatalf("ClaimDue = %v, %+v, %v", ok, sc, err)
			}
			if ok, _, _ := st.ClaimDue(ctx, "s1", sendAt, time.Minute); ok {
				t.Fatal("ClaimDue twice")
			}
			applied, m, err := st.Unschedule(ctx, "s1", sendAt)
			if err != nil || !applied || m.State != store.StateRetry || m.Attempts != 0 {
				t.Fatalf("Unschedule = %v, %+v, %v", applied, m, err)
			}
			it = rawSchedItem(t, b.db, "s1")
			for _, k := range []string{"dueMs", "dueShard", "body", "pendingEvent"} {
				if it[k] != nil {
					t.Errorf("%s kept after the hand-off", k)
				}
			}
			if applied, _, _ := st.Unschedule(ctx, "s1", sendAt); applied {
				t.Fatal("unscheduled twice")
			}
			c.t = sendAt.Add(time.Second)
			m = mustClaim(t, st, "s1", store.Claim{Owner: "s", Lease: c.in(time.Minute), First: c.now()})
			if m.Attempts != 1 || !m.First.Equal(sendAt) {
				t.Fatalf("claim of the due request = %+v; want attempt 1, retry window from sendAt", m)
			}
			// Taken in now, it is no longer cancelable.
			refused(t, st, "s1", store.CancelClaimed)
		})
	}
}

// TestScheduleCancel: a cancel of a scheduled id waits for its scheduled
// event (so that canceled follows it), then wins; the schedule never hands
// it off, and its body, if a sweeper already put it back, is never claimed.
func TestScheduleCancel(t *testing.T) {
	st, c := withClock(t)
	ctx := context.Background()
	sendAt := c.in(time.Hour)
	st.RecordSchedule(ctx, "sc", store.ScheduleRequest{Body: "{}", SendAt: sendAt, Owner: "d", Hold: c.in(time.Minute)})
	refused(t, st, "sc", store.CancelLater)
	st.ScheduledEventSent(ctx, "sc")
	mustCancel(t, st, "sc", "cancel", c.in(time.Minute))
	sc, _ := st.GetScheduled(ctx, "sc")
	if !sc.Due.IsZero() || sc.Body != "" {
		t.Fatalf("canceled record still due or holding its body: %+v", sc)
	}
	c.t = sendAt
	if ok, _, _ := st.ClaimDue(ctx, "sc", sendAt, time.Minute); ok {
		t.Fatal("a canceled schedule was claimed for a hand-off")
	}
	if applied, _, _ := st.Unschedule(ctx, "sc", sendAt); applied {
		t.Fatal("a canceled schedule was handed off")
	}
	if ok, m, _ := st.Claim(ctx, "sc", store.Claim{Owner: "s", Lease: c.in(time.Minute)}); ok || m.State != store.StateCanceled {
		t.Fatalf("Claim of a canceled schedule = %v, %+v", ok, m)
	}
}

// TestScheduleCancelRacesHandOff: a cancel and a hand-off race on a due
// schedule. Both may win (a body handed off but not yet claimed is still
// cancelable), but a canceled id is never claimed, and one that is not
// canceled is claimed once handed off.
func TestScheduleCancelRacesHandOff(t *testing.T) {
	st, c := withClock(t)
	ctx := context.Background()
	for i := range 40 {
		id := fmt.Sprint("due-", i)
		sendAt := c.now()
		st.RecordSchedule(ctx, id, store.ScheduleRequest{Body: "{}", SendAt: sendAt, Owner: "d", Hold: c.in(time.Minute)})
		st.ScheduledEventSent(ctx, id)
		var wg sync.WaitGroup
		var canceled, handed bool
		wg.Add(2)
		go func() {
			defer wg.Done()
			r, err := st.Cancel(ctx, id, "c", c.in(time.Minute))
			canceled = err == nil && r.Won
		}()
		go func() {
			defer wg.Done()
			applied, _, err := st.Unschedule(ctx, id, sendAt)
			handed = err == nil && applied
		}()
		wg.Wait()
		if !canceled && !handed {
			t.Fatalf("%s: neither the cancel nor the hand-off won", id)
		}
		if !handed {
			st.Unschedule(ctx, id, sendAt) // the sweeper, later
		}
		ok, _, _ := st.Claim(ctx, id, store.Claim{Owner: "s", Lease: c.in(time.Minute)})
		if ok == canceled {
			t.Fatalf("%s: claimed %v after canceled %v", id, ok, canceled)
		}
	}
}

// TestDueIndex: on a real engine (dynalite; skipped with -short), the due
// index lists exactly the scheduled requests whose event is out and whose
// dueMs is at or before the bound: not one still announcing itself, a
// canceled one, or one handed off.
func TestDueIndex(t *testing.T) {
	for _, b := range backends(t) {
		q, ok := b.db.(store.Querier)
		if !ok || b.name == "memdb" {
			continue // memdb has no indexes
		}
		t.Run(b.name, func(t *testing.T) {
			st := b.st
			c := &clock{t: time.Now().Truncate(time.Millisecond)}
			st.SetClock(c.now)
			ctx := context.Background()
			rec := func(id string, at time.Time, announce bool) {
				if won, _, err := st.RecordSchedule(ctx, id, store.ScheduleRequest{Body: "{}", SendAt: at, Owner: "d", Hold: c.in(time.Minute)}); !won || err != nil {
					t.Fatalf("RecordSchedule(%s) = %v, %v", id, won, err)
				}
				if announce {
					st.ScheduledEventSent(ctx, id)
				}
			}
			var want []string
			for i := range 12 {
				id := fmt.Sprint("due-idx-", i)
				rec(id, c.in(time.Duration(i)*time.Minute), true)
				if i <= 5 {
					want = append(want, id)
				}
			}
			rec("pending-idx", c.now(), false)
			rec("canceled-idx", c.now(), true)
			if r, _ := st.Cancel(ctx, "canceled-idx", "x", c.in(time.Minute)); !r.Won {
				t.Fatal("cancel lost")
			}
			rec("handed-idx", c.now(), true)
			st.Unschedule(ctx, "handed-idx", c.now())

			got, err := st.Due(ctx, q, c.in(5*time.Minute), 100)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, d := range got {
				ids = append(ids, d.ID)
			}
			slices.Sort(ids)
			slices.Sort(want)
			if !slices.Equal(ids, want) {
				t.Fatalf("Due = %v, want %v", ids, want)
			}
			if got, _ := st.Due(ctx, q, c.in(time.Hour), 3); len(got) == 0 || len(got) > 3 {
				t.Errorf("limit 3 gave %d", len(got))
			}
			// The index's dueMs is what ClaimDue must see.
			d := got[0]
			if ok, _, err := st.ClaimDue(ctx, d.ID, d.Due, time.Minute); !ok || err != nil {
				t.Errorf("ClaimDue(%s, %v) = %v, %v", d.ID, d.Due, ok, err)
			}
		})
	}
}
