package store_test

import (
	"context"
	"fmt"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"sync"
	"testing"
	"time"

	"github.com/mmsgate/mmsgate/pkg/store"
)

func mustCancel(t *testing.T, st *store.Store, id, owner string, hold time.Time) *store.Message {
	t.Helper()
	r, err := st.Cancel(context.Background(), id, owner, hold)
	if err != nil || !r.Won {
		t.Fatalf("Cancel(%s) = %+v, %v; want won", id, r, err)
	}
	if m := r.Message; m.State != store.StateCanceled || m.PendingEvent != store.EventCanceled || !m.Final() || !m.NeedsEvent() {
		t.Fatalf("canceled record = %+v", m)
	}
	return r.Message
}

func refused(t *testing.T, st *store.Store, id, want string) *store.Message {
	t.Helper()
	r, err := st.Cancel(context.Background(), id, "x", time.Now().Add(time.Minute))
	if err != nil || r.Won || r.Refused != want {
		t.Fatalf("Cancel(%s) = won %v refused %q, %v; want refused %q", id, r.Won, r.Refused, err, want)
	}
	return r.Message
}

// TestCancelBeforeTheRequest: a cancel of an id never seen leaves a
// tombstone; the request that comes later is never claimed nor scheduled,
// and its delivery publishes the canceled event if nobody did.
func TestCancelBeforeTheRequest(t *testing.T) {
	st, c := withClock(t)
	ctx := context.Background()
	mustCancel(t, st, "early", "cancel-1", c.in(time.Minute))
	// The canceller died before publishing: after its hold, the request's
	// delivery finds the event pending and takes it.
	if ok, m, _ := st.Claim(ctx, "early", store.Claim{Owner: "req", Lease: c.in(time.Minute)}); ok || !m.Final() || !m.NeedsEvent() {
		t.Fatalf("Claim after the tombstone = %v, %+v; want final with the event pending", ok, m)
	}
	if took, _, _ := st.TakeEvent(ctx, "early", "req", c.in(time.Minute)); took {
		t.Fatal("took the event while its recorder still holds it")
	}
	c.add(2 * time.Minute)
	took, m, err := st.TakeEvent(ctx, "early", "req", c.in(time.Minute))
	if err != nil || !took || m.PendingEvent != store.EventCanceled {
		t.Fatalf("TakeEvent after the hold = %v, %+v, %v", took, m, err)
	}
	ev := delivery.New(m.PendingEvent, m.About(), c.now())
	ev.Code = m.Code
	if ev.Event != "canceled" || ev.ID != "early" || ev.Code != "" {
		t.Errorf("event = %+v", ev)
	}
	if err := st.EventSent(ctx, "early"); err != nil {
		t.Fatal(err)
	}
	if ok, m, _ := st.Claim(ctx, "early", store.Claim{Owner: "req2", Lease: c.in(time.Minute)}); ok || !m.Final() || m.NeedsEvent() {
		t.Fatalf("later Claim = %v, %+v; want a duplicate of a final id", ok, m)
	}
	won, sc, err := st.RecordSchedule(ctx, "early", store.ScheduleRequest{Body: "{}", SendAt: c.in(time.Hour), Owner: "req3", Hold: c.in(time.Minute)})
	if err != nil || won || sc.State != store.StateCanceled {
		t.Fatalf("RecordSchedule after the tombstone = %v, %+v, %v", won, sc, err)
	}
	refused(t, st, "early", store.CancelFinal) // cancel twice: one event
}

// TestCancelRefusals: a claim in progress, an in-doubt call, a dead claim,
// a retry one of whose calls was in doubt, a final id: nothing changes.
func TestCancelRefusals(t *testing.T) {
	st, c := withClock(t)
	ctx := context.Background()

	mustClaim(t, st, "busy", store.Claim{Owner: "a", Lease: c.in(time.Minute), InDoubt: time.Minute})
	if m := refused(t, st, "busy", store.CancelClaimed); m.State != store.StateInProgress || m.Owner != "a" {
		t.Fatalf("record after a refused cancel = %+v", m)
	}
	// The claim's holder still records its answer.
	if won, _, err := st.Accept(ctx, "busy", "a", c.in(time.Minute), store.Outcome{Attempt: 1, TrackingID: "T1"}); !won || err != nil {
		t.Fatalf("Accept after a refused cancel = %v, %v", won, err)
	}
	refused(t, st, "busy", store.CancelFinal)

	mustClaim(t, st, "doubt", store.Claim{Owner: "a", Lease: c.in(time.Minute), InDoubt: time.Minute})
	if applied, _ := st.Doubt(ctx, "doubt", "a", c.in(time.Hour), store.Outcome{Attempt: 1, Code: "TIMEOUT"}); !applied {
		t.Fatal("Doubt not applied")
	}
	refused(t, st, "doubt", store.CancelInDoubt)

	mustClaim(t, st, "dead", store.Claim{Owner: "a", Lease: c.in(time.Second), InDoubt: time.Minute})
	c.add(2 * time.Second) // its sender died with the claim, maybe mid-call
	refused(t, st, "dead", store.CancelInDoubt)

	// In doubt once, then retried and failed for sure: the first call may
	// still have reached Skycore.
	mustClaim(t, st, "was-doubt", store.Claim{Owner: "a", Lease: c.in(time.Minute), InDoubt: time.Minute})
	st.Doubt(ctx, "was-doubt", "a", c.in(time.Minute), store.Outcome{Attempt: 1, Code: "TIMEOUT"})
	c.add(2 * time.Minute)
	mustClaim(t, st, "was-doubt", store.Claim{Owner: "b", Lease: c.in(time.Minute), InDoubt: time.Minute})
	if applied, _ := st.Release(ctx, "was-doubt", "b", store.Outcome{Attempt: 2, Code: "E503"}); !applied {
		t.Fatal("Release not applied")
	}
	refused(t, st, "was-doubt", store.CancelInDoubt)

	// A claim whose sender died, taken over at once (no doubt window),
	// then released: the dead attempt left no history, so it may have called.
	mustClaim(t, st, "was-dead", store.Claim{Owner: "a", Lease: c.in(time.Second)})
	c.add(2 * time.Second)
	mustClaim(t, st, "was-dead", store.Claim{Owner: "b", Lease: c.in(time.Minute)})
	st.Release(ctx, "was-dead", "b", store.Outcome{Attempt: 2, Code: "E503"})
	refused(t, st, "was-dead", store.CancelInDoubt)
}

// TestCancelRetry: a request whose every call failed for sure is canceled;
// its queued body, when it comes back, finds it final.
func TestCancelRetry(t *testing.T) {
	st, c := withClock(t)
	ctx := context.Background()
	for a := 1; a <= 3; a++ {
		mustClaim(t, st, "r", store.Claim{Owner: fmt.Sprint("o", a), Lease: c.in(time.Minute), InDoubt: time.Minute})
		if applied, _ := st.Release(ctx, "r", fmt.Sprint("o", a), store.Outcome{Attempt: a, Code: "E503"}); !applied {
			t.Fatal("Release not applied")
		}
	}
	mustCancel(t, st, "r", "cancel", c.in(time.Minute))
	if ok, m, _ := st.Claim(ctx, "r", store.Claim{Owner: "o4", Lease: c.in(time.Minute), InDoubt: time.Minute}); ok || m.State != store.StateCanceled {
		t.Fatalf("Claim after the cancel = %v, %+v", ok, m)
	}
	// No terminal write of a sender can follow it.
	if won, _, _ := st.Expire(ctx, "r", "o3", c.in(time.Minute), store.Outcome{Code: "E503"}); won {
		t.Fatal("Expire won over a cancel")
	}
	if won, _, _ := st.AcceptByPostback(ctx, "r", "T1", "pb", c.in(time.Minute)); won {
		t.Fatal("a postback's acceptance won over a cancel")
	}
}

// TestCancelRaces: cancels race claims, and cancels race each other, on
// fresh ids: exactly one side wins each id, and a claimed id is never
// canceled.
func TestCancelRaces(t *testing.T) {
	st, c := withClock(t)
	ctx := context.Background()
	for i := range 50 {
		id := fmt.Sprint("race-", i)
		var wg sync.WaitGroup
		var claims, cancels int
		var mu sync.Mutex
		for g := range 4 {
			wg.Add(2)
			go func() {
				defer wg.Done()
				if ok, _, err := st.Claim(ctx, id, store.Claim{Owner: fmt.Sprint("s", g), Lease: c.in(time.Minute), InDoubt: time.Minute}); err == nil && ok {
					mu.Lock()
					claims++
					mu.Unlock()
				}
			}()
			go func() {
				defer wg.Done()
				r, err := st.Cancel(ctx, id, fmt.Sprint("c", g), c.in(time.Minute))
				if err != nil {
					t.Error(err)
				}
				if r.Won {
					mu.Lock()
					cancels++
					mu.Unlock()
				} else if r.Refused != store.CancelClaimed && r.Refused != store.CancelFinal {
					t.Errorf("%s: refused %q", id, r.Refused)
				}
			}()
		}
		wg.Wait()
		if claims+cancels != 1 {
			t.Fatalf("%s: %d claims and %d cancels won; want exactly one", id, claims, cancels)
		}
		m, _ := st.Get(ctx, id)
		if (cancels == 1) != (m.State == store.StateCanceled) {
			t.Fatalf("%s: record %+v after %d cancels", id, m, cancels)
		}
	}
}
