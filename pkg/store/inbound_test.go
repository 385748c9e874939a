package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/pkg/store"
)

func claimIn(t *testing.T, st *store.Store, key, owner string, hold time.Time) store.InboundClaim {
	t.Helper()
	c, err := st.ClaimInbound(context.Background(), key, owner, hold)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestInboundOnce walks one inbound message through its copies: the
// first is published, a copy while it is held waits (503), a copy after
// it is done is a duplicate, and a copy after a failure publishes only
// what is not published yet.
func TestInboundOnce(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			clk := supClock(b.st)
			hold := func() time.Time { return clk.now().Add(30 * time.Second) }
			const key = "N211:511XG-02294-192SA-482H8"

			if c := claimIn(t, b.st, key, "o1", hold()); c.Decision != store.InboundNew || len(c.Published) != 0 {
				t.Fatalf("first = %+v", c)
			}
			if c := claimIn(t, b.st, key, "o2", hold()); c.Decision != store.InboundBusy {
				t.Errorf("copy while held = %v, want busy", c.Decision)
			}
			if ok, err := b.st.InboundPublished(ctx, key, "o2", "inbound"); ok || err != nil {
				t.Errorf("InboundPublished by a non-holder = %v, %v", ok, err)
			}
			if ok, err := b.st.InboundPublished(ctx, key, "o1", "inbound"); !ok || err != nil {
				t.Fatalf("InboundPublished = %v, %v", ok, err)
			}
			// o1 fails publishing optout: it releases, Skycore retries.
			if err := b.st.ReleaseInbound(ctx, key, "o1"); err != nil {
				t.Fatal(err)
			}
			c := claimIn(t, b.st, key, "o3", hold())
			if c.Decision != store.InboundNew || !cmp.Equal(c.Published, []string{"inbound"}) {
				t.Fatalf("retry after a release = %+v; want new with inbound published", c)
			}
			if ok, _ := b.st.InboundPublished(ctx, key, "o3", "optout"); !ok {
				t.Fatal("InboundPublished(optout) failed")
			}
			// o3 dies before InboundDone: the next copy waits for its hold.
			if c := claimIn(t, b.st, key, "o4", hold()); c.Decision != store.InboundBusy {
				t.Errorf("copy while a dead holder's hold lasts = %v", c.Decision)
			}
			clk.add(31 * time.Second)
			c = claimIn(t, b.st, key, "o4", hold())
			if c.Decision != store.InboundNew || !cmp.Equal(c.Published, []string{"inbound", "optout"}) {
				t.Fatalf("after the hold = %+v", c)
			}
			if ok, err := b.st.InboundDone(ctx, key, "o3"); ok || err != nil {
				t.Errorf("InboundDone by the dead holder = %v, %v; want false", ok, err)
			}
			if ok, err := b.st.InboundDone(ctx, key, "o4"); !ok || err != nil {
				t.Fatalf("InboundDone = %v, %v", ok, err)
			}
			for _, o := range []string{"o5", "o4"} {
				if c := claimIn(t, b.st, key, o, hold()); c.Decision != store.InboundDuplicate {
					t.Errorf("copy after done (%s) = %v", o, c.Decision)
				}
			}
			clk.add(time.Hour)
			if c := claimIn(t, b.st, key, "o6", hold()); c.Decision != store.InboundDuplicate {
				t.Errorf("copy an hour later = %v", c.Decision)
			}
			// Another message is its own.
			if c := claimIn(t, b.st, "N211:other", "o6", hold()); c.Decision != store.InboundNew {
				t.Errorf("another message = %v", c.Decision)
			}
		})
	}
}

func TestInboundKeyLimits(t *testing.T) {
	st := backends(t)[0].st
	for _, key := range []string{"", strings.Repeat("k", store.MaxInboundKey+1)} {
		if _, err := st.ClaimInbound(context.Background(), key, "o", time.Now().Add(time.Minute)); err == nil {
			t.Errorf("ClaimInbound(%d bytes) = nil error", len(key))
		}
	}
	if c := claimIn(t, st, strings.Repeat("k", store.MaxInboundKey), "o", time.Now().Add(time.Minute)); c.Decision != store.InboundNew {
		t.Errorf("longest key = %v", c.Decision)
	}
}

// TestInboundConcurrentCopies: of many copies arriving at once, exactly
// one is claimed.
func TestInboundConcurrentCopies(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			var mu sync.Mutex
			got := map[store.InboundDecision]int{}
			var wg sync.WaitGroup
			for i := 0; i < 12; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := b.st.ClaimInbound(context.Background(), "N401:MMS_MO_iLnCRrL6", fmt.Sprintf("o%d", i), time.Now().Add(time.Minute))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					got[c.Decision]++
					mu.Unlock()
				}()
			}
			wg.Wait()
			if got[store.InboundNew] != 1 || got[store.InboundBusy] != 11 {
				t.Errorf("decisions = %v; want one new, eleven busy", got)
			}
		})
	}
}
