package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/mmsgate/mmsgate/pkg/store"
)

// setup returns a store on memdb under -short (no Node needed) and on
// dynalite otherwise; backends gives a test both.
func setup(t *testing.T) *store.Store {
	t.Helper()
	bs := backends(t)
	return bs[len(bs)-1].st
}

// TestPostbackDecisions walks one tracking id through every decision.
func TestPostbackDecisions(t *testing.T) {
	st := setup(t)
	ctx := context.Background()
	if err := st.Link(ctx, "T1", "order-1"); err != nil {
		t.Fatal(err)
	}
	type step struct {
		name  string
		key   string
		rank  int
		done  bool // call PostbackDone after an Emit
		want  store.Decision
		clock time.Duration // how far the clock has moved
	}
	steps := []step{
		{name: "first sent", key: "N101_a", rank: 1, done: true, want: store.Emit},
		{name: "the same again", key: "N101_a", rank: 1, want: store.Duplicate},
		{name: "delivered, not confirmed", key: "N102_b", rank: 2, want: store.Emit},
		{name: "its retry while the emitter holds it", key: "N102_b", rank: 2, want: store.Busy},
		{name: "its retry after the lease", key: "N102_b", rank: 2, done: true, want: store.Emit, clock: time.Minute},
		{name: "then a duplicate", key: "N102_b", rank: 2, want: store.Duplicate, clock: time.Minute},
		{name: "a late sent", key: "N101_c", rank: 1, want: store.History, clock: time.Minute},
		{name: "another final state", key: "E102_d", rank: 2, want: store.History, clock: time.Minute},
	}
	for _, s := range steps {
		at := time.Now().Add(s.clock)
		st.SetClock(func() time.Time { return at })
		d, j, err := st.Postback(ctx, "T1", s.key, s.rank, "x", 30*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if d != s.want {
			t.Errorf("%s: decision %s, want %s", s.name, d, s.want)
		}
		if j.ID != "order-1" {
			t.Errorf("%s: joined id %q", s.name, j.ID)
		}
		if s.done {
			if err := st.PostbackDone(ctx, "T1", s.key); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestPostbackUnknownTracking(t *testing.T) {
	st := setup(t)
	d, j, err := st.Postback(context.Background(), "nobody", "N101_a", 1, "sent", time.Second)
	if err != nil || d != store.Emit || j.ID != "" {
		t.Errorf("Postback = %s, %+v, %v; want Emit with no id", d, j, err)
	}
}
