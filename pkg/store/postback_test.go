package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/memdb"
	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/store"
)

const hold = 30 * time.Second

// pbClock is a settable clock for the store.
type pbClock struct{ t time.Time }

func (c *pbClock) now() time.Time      { return c.t }
func (c *pbClock) add(d time.Duration) { c.t = c.t.Add(d) }
func (c *pbClock) until() time.Time    { return c.t.Add(hold) }

// pbSetup is the store on memdb under -short (no Node), else on dynalite.
func pbSetup(t *testing.T) *store.Store {
	t.Helper()
	if !testing.Short() {
		return setup(t)
	}
	db := memdb.New()
	if err := store.CreateTable(context.Background(), db, "mmsgate-messages"); err != nil {
		t.Fatal(err)
	}
	return store.New(db, "mmsgate-messages", 0)
}

func newClock(st *store.Store) *pbClock {
	c := &pbClock{t: time.Now()}
	st.SetClock(c.now)
	return c
}

func owner(i int) string { return fmt.Sprintf("postback/req-%d", i) }

// TestPostbackDecisions walks one tracking id through every decision.
func TestPostbackDecisions(t *testing.T) {
	st := pbSetup(t)
	c := newClock(st)
	ctx := context.Background()
	if err := st.Link(ctx, "T1", "order-1", nil); err != nil {
		t.Fatal(err)
	}
	type step struct {
		name    string
		key     string
		rank    int
		owner   string
		done    bool // call PostbackDone after an Emit
		release bool // call PostbackRelease after an Emit (the invocation answers 5xx)
		want    store.Decision
		advance time.Duration // how far the clock moves before the step
	}
	steps := []step{
		{name: "first sent", key: "N101_a", rank: 1, owner: "o1", done: true, want: store.Emit},
		{name: "the same again", key: "N101_a", rank: 1, owner: "o2", want: store.Duplicate},
		{name: "delivered, not confirmed (its invocation died)", key: "N102_b", rank: 2, owner: "o3", want: store.Emit},
		{name: "its retry while the dead emitter holds it", key: "N102_b", rank: 2, owner: "o4", want: store.Busy},
		{name: "another final state while it is held", key: "E102_x", rank: 2, owner: "o4", want: store.History},
		{name: "its retry after the hold", key: "N102_b", rank: 2, owner: "o5", release: true, want: store.Emit, advance: time.Minute},
		{name: "a retry right after a release", key: "N102_b", rank: 2, owner: "o6", done: true, want: store.Emit},
		{name: "then a duplicate", key: "N102_b", rank: 2, owner: "o7", want: store.Duplicate},
		{name: "a late sent", key: "N101_c", rank: 1, owner: "o8", want: store.History},
		{name: "another final state", key: "E102_d", rank: 2, owner: "o9", want: store.History},
	}
	for _, s := range steps {
		c.add(s.advance)
		d, j, err := st.Postback(ctx, "T1", s.key, s.rank, "x", s.owner, c.until())
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
			if err := st.PostbackDone(ctx, "T1", s.key, s.owner, delivery.About{}); err != nil {
				t.Fatal(err)
			}
		}
		if s.release {
			if err := st.PostbackRelease(ctx, "T1", s.owner); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestPostbackUnknownTracking(t *testing.T) {
	st := pbSetup(t)
	c := newClock(st)
	first := c.now()
	d, j, err := st.Postback(context.Background(), "nobody", "N101_a", 1, "sent", "o1", c.until())
	if err != nil || d != store.Emit || j.ID != "" {
		t.Fatalf("Postback = %s, %+v, %v; want Emit with no id", d, j, err)
	}
	st.PostbackRelease(context.Background(), "nobody", "o1")
	c.add(5 * time.Minute)
	_, j, _ = st.Postback(context.Background(), "nobody", "N101_a", 1, "sent", "o2", c.until())
	if !j.FirstSeen.Equal(first.Truncate(time.Millisecond)) {
		t.Errorf("FirstSeen = %v, want the first arrival %v", j.FirstSeen, first)
	}
}

// TestPostbackResumeRechecksRank guards a fixed bug: N101 fails to
// publish, N102 succeeds, Skycore's retry of N101 must not resume its
// advance: it becomes history, and the stream never moves back.
func TestPostbackResumeRechecksRank(t *testing.T) {
	st := pbSetup(t)
	c := newClock(st)
	ctx := context.Background()
	type step struct {
		key, owner string
		rank       int
		after      string // "done", "release" (5xx), or "" (the invocation died)
		advance    time.Duration
		want       store.Decision
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"N101 released, N102 done, N101 retried", []step{
			{"N101_a", "o1", 1, "release", 0, store.Emit},
			{"N102_b", "o2", 2, "done", 0, store.Emit},
			{"N101_a", "o3", 1, "", 0, store.History},
			{"N101_a", "o4", 1, "", 0, store.Duplicate},
		}},
		{"N101 died holding, N102 after its hold, N101 retried", []step{
			{"N101_a", "o1", 1, "", 0, store.Emit},
			{"N102_b", "o2", 2, "", 0, store.Busy}, // one emitter per tracking id
			{"N102_b", "o3", 2, "done", hold + time.Second, store.Emit},
			{"N101_a", "o4", 1, "", 0, store.History},
		}},
		{"N101 released, N102 released, N101 retried, N102 retried", []step{
			{"N101_a", "o1", 1, "release", 0, store.Emit},
			{"N102_b", "o2", 2, "release", 0, store.Emit},
			{"N101_a", "o3", 1, "", 0, store.History},
			{"N102_b", "o4", 2, "done", 0, store.Emit},
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tid := fmt.Sprint("T-rank-", i)
			for _, s := range tt.steps {
				c.add(s.advance)
				d, _, err := st.Postback(ctx, tid, s.key, s.rank, "x", s.owner, c.until())
				if err != nil {
					t.Fatal(err)
				}
				if d != s.want {
					t.Errorf("%s by %s: decision %s, want %s", s.key, s.owner, d, s.want)
				}
				if d != store.Emit {
					continue
				}
				switch s.after {
				case "done":
					err = st.PostbackDone(ctx, tid, s.key, s.owner, delivery.About{})
				case "release":
					err = st.PostbackRelease(ctx, tid, s.owner)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestPostbackReleaseIsConditional: a release or a done by an invocation
// whose hold ran out does not free the slot its successor holds.
func TestPostbackReleaseIsConditional(t *testing.T) {
	st := pbSetup(t)
	c := newClock(st)
	ctx := context.Background()
	if d, _, _ := st.Postback(ctx, "T-rel", "N101_a", 1, "sent", "old", c.until()); d != store.Emit {
		t.Fatal(d)
	}
	c.add(hold + time.Second)
	if d, _, _ := st.Postback(ctx, "T-rel", "N101_a", 1, "sent", "new", c.until()); d != store.Emit {
		t.Fatal(d)
	}
	if err := st.PostbackRelease(ctx, "T-rel", "old"); err != nil {
		t.Fatal(err)
	}
	if d, _, _ := st.Postback(ctx, "T-rel", "N102_b", 2, "delivered", "third", c.until()); d != store.Busy {
		t.Errorf("after the old holder's release: %s, want busy (the new holder still emits)", d)
	}
	if err := st.PostbackDone(ctx, "T-rel", "N101_a", "old", delivery.About{}); err != nil { // published late: marks it done, keeps the slot
		t.Fatal(err)
	}
	if d, _, _ := st.Postback(ctx, "T-rel", "N102_b", 2, "delivered", "third", c.until()); d != store.Busy {
		t.Errorf("after the old holder's done: %s, want busy", d)
	}
	if err := st.PostbackDone(ctx, "T-rel", "N101_a", "new", delivery.About{}); err != nil {
		t.Fatal(err)
	}
	if d, _, _ := st.Postback(ctx, "T-rel", "N102_b", 2, "delivered", "third", c.until()); d != store.Emit {
		t.Errorf("after the holder's done: %s, want emit", d)
	}
}

func TestPostbackSettledAndUnkeyable(t *testing.T) {
	st := pbSetup(t)
	c := newClock(st)
	ctx := context.Background()
	st.Link(ctx, "T-set", "order-9", nil)
	_, j, _ := st.Postback(ctx, "T-set", "N101_a", 1, "sent", "o1", c.until())
	if j.Settled {
		t.Errorf("settled before anyone said so")
	}
	// What the settled record tells every event rides on the tracking id.
	about := delivery.About{ID: "order-9", TrackingID: "T-set", To: "17743199144", MMSID: "48211"}
	st.PostbackDone(ctx, "T-set", "N101_a", "o1", about)
	_, j, _ = st.Postback(ctx, "T-set", "N102_b", 2, "delivered", "o2", c.until())
	if diff := cmp.Diff(store.Joined{ID: "order-9", Settled: true, About: about}, j, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".FirstSeen" }, cmp.Ignore())); diff != "" {
		t.Errorf("Joined (-want +got):\n%s", diff)
	}
	_, _, err := st.Postback(ctx, strings.Repeat("x", store.MaxKeyBytes), "N101_a", 1, "sent", "o1", c.until())
	if apperr.CodeOf(err) != apperr.CodeMalformed || apperr.ClassOf(err) != apperr.Permanent {
		t.Errorf("unkeyable tracking id: %v, want a permanent MALFORMED", err)
	}
}

// TestPostbackInterleavings is the property of docs/postback.md over random
// schedules of one tracking id's postbacks (N101, N201, N102, E102, N202,
// each delivered once or twice): invocations interleave step by step
// (decide, publish, mark done), publishes fail (→ release, 5xx), invocations
// die before or after publishing (their hold runs out), and Skycore retries
// every non-200. Then: the published ranks never decrease; each postback
// is published at most once, except one whose invocation died after
// publishing (the documented at-least-once window); every postback gets a
// 200 in the end; and the final state is published.
func TestPostbackInterleavings(t *testing.T) {
	st := pbSetup(t)
	c := newClock(st)
	ctx := context.Background()
	type pb struct {
		key  string
		rank int
	}
	all := []pb{{"N101_a", 1}, {"N201_b", 1}, {"N102_c", 2}, {"E102_d", 2}, {"N202_e", 2}}
	type inv struct {
		pb    pb
		owner string
		step  int // 0 decide, 1 publish, 2 done
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	runs := 100 // dynalite: ~8 s
	if testing.Short() {
		runs = 400 // memdb: ~1 s
	}
	for run := range runs {
		tid := fmt.Sprint("T-prop-", run)
		var queue []pb // deliveries waiting for an invocation
		delivered := map[string]bool{}
		for _, p := range all {
			if r.IntN(3) > 0 || p.rank == 2 { // some postbacks never come
				delivered[p.key] = true
				queue = append(queue, p)
				if r.IntN(4) == 0 {
					queue = append(queue, p) // at-least-once
				}
			}
		}
		r.Shuffle(len(queue), func(i, j int) { queue[i], queue[j] = queue[j], queue[i] })
		var (
			flying     []*inv
			published  []pb
			ok         = map[string]bool{} // got a 200
			diedAfter  = map[string]bool{}
			n          int
			failBudget = 6
		)
		fail := func() bool {
			if failBudget > 0 && r.IntN(4) == 0 {
				failBudget--
				return true
			}
			return false
		}
		for steps := 0; len(queue) > 0 || len(flying) > 0; steps++ {
			if steps > 2000 {
				t.Fatalf("run %d (seed %d): no progress; queue %v, in flight %d", run, seed, queue, len(flying))
			}
			switch x := r.IntN(10); {
			case (x == 0 || len(queue) == 0) && len(flying) == 0:
				// Time passes between invocations only: one lasts at most
				// the function's timeout (10 s), less than its hold. Skycore's
				// retries come 5 minutes apart.
				c.add(time.Duration(r.IntN(2)) * (hold + time.Second))
			case len(queue) > 0 && (x < 4 || len(flying) == 0):
				i := r.IntN(len(queue))
				n++
				flying = append(flying, &inv{pb: queue[i], owner: owner(n)})
				queue = append(queue[:i], queue[i+1:]...)
			case len(flying) > 0:
				i := r.IntN(len(flying))
				v := flying[i]
				finish := func(code int) {
					flying = append(flying[:i], flying[i+1:]...)
					if code == 200 {
						ok[v.pb.key] = true
					} else {
						queue = append(queue, v.pb) // Skycore retries
					}
				}
				switch v.step {
				case 0:
					d, _, err := st.Postback(ctx, tid, v.pb.key, v.pb.rank, "x", v.owner, c.until())
					switch {
					case err != nil:
						t.Fatal(err)
					case d == store.Emit:
						v.step = 1
					case d == store.Busy:
						finish(503)
					default:
						finish(200)
					}
				case 1:
					switch {
					case r.IntN(12) == 0: // dies before publishing, holding
						finish(502)
					case fail(): // the events queue is down: release, 503
						if err := st.PostbackRelease(ctx, tid, v.owner); err != nil {
							t.Fatal(err)
						}
						finish(503)
					default:
						published = append(published, v.pb)
						v.step = 2
					}
				case 2:
					if r.IntN(12) == 0 { // dies after publishing, before done
						diedAfter[v.pb.key] = true
						finish(502)
						continue
					}
					if err := st.PostbackDone(ctx, tid, v.pb.key, v.owner, delivery.About{}); err != nil {
						t.Fatal(err)
					}
					finish(200)
				}
			}
		}
		var ranks []int
		count := map[string]int{}
		final := false
		for i, p := range published {
			ranks = append(ranks, p.rank)
			count[p.key]++
			final = final || p.rank == 2
			if i > 0 && p.rank < published[i-1].rank {
				t.Errorf("run %d (seed %d): published ranks %v: moved back", run, seed, ranks)
			}
		}
		for k, c := range count {
			if c > 1 && !diedAfter[k] {
				t.Errorf("run %d (seed %d): %s published %d times: %v", run, seed, k, c, published)
			}
		}
		if !final {
			t.Errorf("run %d (seed %d): no final state published: %v", run, seed, published)
		}
		for k := range delivered {
			if !ok[k] {
				t.Errorf("run %d (seed %d): %s never got a 200", run, seed, k)
			}
		}
	}
}
