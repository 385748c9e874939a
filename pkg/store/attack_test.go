package store_test

// Adversarial review: the state machine under concurrent writers and at
// the exact millisecond of its lease and doubt boundaries.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// TestAttackClockEdges: a claim is never taken while its lease has not
// strictly passed, an in-doubt id never before its doubt window has
// strictly passed, and both are claimable one millisecond later.
func TestAttackClockEdges(t *testing.T) {
	ctx := context.Background()
	for _, window := range []time.Duration{0, time.Minute} {
		t.Run(fmt.Sprint("window ", window), func(t *testing.T) {
			st, c := withClock(t)
			id := fmt.Sprint("edge-", window.Milliseconds())
			lease := c.in(10 * time.Second)
			mustClaim(t, st, id, store.Claim{Owner: "a", Lease: lease, InDoubt: window})
			c.t = lease.Add(-time.Millisecond)
			if ok, _, _ := st.Claim(ctx, id, store.Claim{Owner: "b", Lease: c.in(time.Minute), InDoubt: window}); ok {
				t.Fatal("claimed 1 ms before the lease ends")
			}
			c.t = lease
			if ok, _, _ := st.Claim(ctx, id, store.Claim{Owner: "b", Lease: c.in(time.Minute), InDoubt: window}); ok {
				t.Fatal("claimed at the lease's last millisecond")
			}
			// The holder, still inside its lease at that millisecond, records its answer.
			c.t = lease.Add(window)
			if ok, _, _ := st.Claim(ctx, id, store.Claim{Owner: "b", Lease: c.in(time.Minute), InDoubt: window}); ok {
				t.Fatal("claimed at the doubt window's last millisecond")
			}
			c.t = lease.Add(window + time.Millisecond)
			mustClaim(t, st, id, store.Claim{Owner: "b", Lease: c.in(time.Minute), InDoubt: window})
			// a's late give-back must not touch b's claim.
			if applied, _ := st.Release(ctx, id, "a", store.Outcome{Code: "E503"}); applied {
				t.Error("the dead holder's Release applied to b's claim")
			}
			if applied, _ := st.Doubt(ctx, id, "a", c.in(time.Hour), store.Outcome{Code: "TIMEOUT"}); applied {
				t.Error("the dead holder's Doubt applied to b's claim")
			}
			m, _ := st.Get(ctx, id)
			if m.State != store.StateInProgress || m.Owner != "b" {
				t.Errorf("record = %+v; want b's claim", m)
			}
		})
	}
}

// TestAttackOneTerminalWinner: the sender's Accept, Reject and Expire and
// a postback's AcceptByPostback race on one open id, 8 goroutines each:
// exactly one wins, and the record keeps the winner's state and event.
func TestAttackOneTerminalWinner(t *testing.T) {
	ctx := context.Background()
	for round, from := range []string{store.StateInProgress, store.StateRetry, store.StateInDoubt} {
		st, c := withClock(t)
		id := fmt.Sprint("race-", round)
		mustClaim(t, st, id, store.Claim{Owner: "s", Lease: c.in(time.Minute), InDoubt: time.Minute})
		switch from {
		case store.StateRetry:
			st.Release(ctx, id, "s", store.Outcome{Code: "E503"})
		case store.StateInDoubt:
			st.Doubt(ctx, id, "s", c.in(time.Hour), store.Outcome{Code: "TIMEOUT"})
		}
		var wins atomic.Int32
		var winner atomic.Value
		var wg sync.WaitGroup
		writes := map[string]func(i int) (bool, *store.Message, error){
			store.StateAccepted: func(i int) (bool, *store.Message, error) {
				return st.Accept(ctx, id, "s", c.in(time.Minute), store.Outcome{TrackingID: fmt.Sprint("T", i)})
			},
			store.StateRejected: func(i int) (bool, *store.Message, error) {
				return st.Reject(ctx, id, "s", c.in(time.Minute), store.Outcome{Code: "E110"})
			},
			store.StateExpired: func(i int) (bool, *store.Message, error) {
				return st.Expire(ctx, id, "s", c.in(time.Minute), store.Outcome{Code: "E503"})
			},
			"postback": func(i int) (bool, *store.Message, error) {
				return st.AcceptByPostback(ctx, id, fmt.Sprint("P", i), "pb", c.in(time.Minute))
			},
		}
		for name, w := range writes {
			for i := range 8 {
				wg.Go(func() {
					won, m, err := w(i)
					if err != nil {
						t.Error(err)
						return
					}
					if won {
						wins.Add(1)
						winner.Store(name + ":" + m.State + ":" + m.PendingEvent)
					}
				})
			}
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("from %s: %d winners", from, wins.Load())
		}
		m, _ := st.Get(ctx, id)
		if !m.Final() || m.PendingEvent != store.TerminalEvent(m.State) {
			t.Errorf("from %s: record %+v (winner %v)", from, m, winner.Load())
		}
		// Nothing reopens it: claims far in the future, give-backs by its owner.
		c.add(48 * time.Hour)
		if ok, _, _ := st.Claim(ctx, id, store.Claim{Owner: "late", Lease: c.in(time.Minute)}); ok {
			t.Errorf("from %s: a final id was claimed again", from)
		}
		st.Release(ctx, id, "s", store.Outcome{Code: "E503"})
		st.Doubt(ctx, id, "s", c.in(time.Hour), store.Outcome{})
		if m2, _ := st.Get(ctx, id); m2.State != m.State || m2.TrackingID != m.TrackingID {
			t.Errorf("from %s: final record changed %+v -> %+v", from, m, m2)
		}
	}
}

// TestAttackPendingEventOnePublisher: many deliveries and postbacks find
// the pending event after its recorder's hold ended; exactly one takes it
// at a time, and once sent nobody takes it again.
func TestAttackPendingEventOnePublisher(t *testing.T) {
	ctx := context.Background()
	st, c := withClock(t)
	mustClaim(t, st, "pe", store.Claim{Owner: "s", Lease: c.in(time.Minute)})
	st.Accept(ctx, "pe", "s", c.in(time.Second), store.Outcome{TrackingID: "T"})
	c.t = c.in(time.Second) // exactly at the hold's end: still held
	if took, _, _ := st.TakeEvent(ctx, "pe", "other", c.in(time.Minute)); took {
		t.Fatal("taken at the hold's last millisecond")
	}
	c.add(time.Millisecond)
	var took atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			if ok, _, err := st.TakeEvent(ctx, "pe", fmt.Sprint("o", i), c.in(time.Minute)); err == nil && ok {
				took.Add(1)
			}
		})
	}
	wg.Wait()
	if took.Load() != 1 {
		t.Fatalf("%d takers", took.Load())
	}
	st.EventSent(ctx, "pe")
	c.add(time.Hour)
	if ok, m, _ := st.TakeEvent(ctx, "pe", "late", c.in(time.Minute)); ok || m.NeedsEvent() {
		t.Errorf("taken again after it was sent: %v %+v", ok, m)
	}
}

// TestAttackPostbackOneEmitter: N101 and N102 of one tracking id, eight
// of each at once: at most one Emit holds the slot at a time, N102 is
// emitted exactly once over all, and an N101 is never emitted once N102
// was.
func TestAttackPostbackOneEmitter(t *testing.T) {
	ctx := context.Background()
	st, c := withClock(t)
	var mu sync.Mutex
	var log []string
	var wg sync.WaitGroup
	for i := range 16 {
		code, rank, state := "N101", 1, "sent"
		if i%2 == 1 {
			code, rank, state = "N102", 2, "delivered"
		}
		wg.Go(func() {
			owner := fmt.Sprint("o", i)
			d, _, err := st.Postback(ctx, "T-one", code+"_k", rank, state, owner, c.in(30*time.Second))
			if err != nil {
				t.Error(err)
				return
			}
			if d == store.Emit {
				mu.Lock()
				log = append(log, code)
				mu.Unlock()
				st.PostbackDone(ctx, "T-one", code+"_k", owner, delivery.About{})
			}
		})
	}
	wg.Wait()
	// Whatever was busy retries until done.
	for _, p := range []struct {
		code  string
		rank  int
		state string
	}{{"N101", 1, "sent"}, {"N102", 2, "delivered"}} {
		d, _, _ := st.Postback(ctx, "T-one", p.code+"_k", p.rank, p.state, "retry", c.in(30*time.Second))
		if d == store.Emit {
			log = append(log, p.code)
			st.PostbackDone(ctx, "T-one", p.code+"_k", "retry", delivery.About{})
		}
	}
	n102 := 0
	for i, e := range log {
		if e == "N102" {
			n102++
		}
		if e == "N101" && i > 0 && n102 > 0 {
			t.Errorf("N101 emitted after N102: %v", log)
		}
	}
	if n102 != 1 {
		t.Errorf("emits %v: want N102 exactly once", log)
	}
}
