package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/pkg/store"
)

func setup(t *testing.T) *store.Store {
	t.Helper()
	env, err := localenv.Start(context.Background(), localenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	return store.New(env.DynamoDB(), localenv.Table, 0)
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

func TestClaimLifecycle(t *testing.T) {
	st := setup(t)
	ctx := context.Background()
	lease := time.Now().Add(time.Minute)
	if ok, _, err := st.Claim(ctx, "m1", "a", lease); !ok || err != nil {
		t.Fatalf("first claim = %v, %v", ok, err)
	}
	if ok, m, _ := st.Claim(ctx, "m1", "b", lease); ok || m.State != store.StateInProgress || m.Owner != "a" {
		t.Fatalf("second claim = %v, %+v; want busy, owned by a", ok, m)
	}
	if err := st.Release(ctx, "m1", "b", "E503"); err != nil { // not the owner: no effect
		t.Fatal(err)
	}
	if ok, _, _ := st.Claim(ctx, "m1", "b", lease); ok {
		t.Fatal("a release by someone else freed the claim")
	}
	if err := st.Release(ctx, "m1", "a", "E503"); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := st.Claim(ctx, "m1", "b", lease); !ok {
		t.Fatal("a released claim cannot be taken")
	}
	if err := st.Accept(ctx, "m1", store.Outcome{TrackingID: "T9", To: "1"}); err != nil {
		t.Fatal(err)
	}
	ok, m, _ := st.Claim(ctx, "m1", "c", time.Now().Add(time.Hour))
	if ok || !m.Final() || m.TrackingID != "T9" || m.PendingEvent != "accepted" || m.Attempts != 2 {
		t.Fatalf("claim of an accepted id = %v, %+v", ok, m)
	}
	// A dead claimant's lease runs out: the id can be taken over.
	if ok, _, _ := st.Claim(ctx, "m2", "a", time.Now().Add(-time.Second)); !ok {
		t.Fatal("claim m2")
	}
	if ok, _, _ := st.Claim(ctx, "m2", "b", lease); !ok {
		t.Fatal("an expired lease was not taken over")
	}
}
