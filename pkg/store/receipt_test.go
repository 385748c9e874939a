package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/memdb"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// accepted records id as accepted with trackingID, its accepted event
// published (and the tracking id linked when there is one).
func accepted(t *testing.T, st *store.Store, id, trackingID string) {
	t.Helper()
	ctx := context.Background()
	if _, _, err := st.Claim(ctx, id, store.Claim{Owner: "sender", Lease: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	o := store.Outcome{TrackingID: trackingID, To: "17743199144", From: "60856", MMSID: "48211"}
	if won, _, err := st.Accept(ctx, id, "sender", time.Now().Add(time.Minute), o); err != nil || !won {
		t.Fatalf("Accept = %v, %v", won, err)
	}
	if err := st.EventSent(ctx, id); err != nil {
		t.Fatal(err)
	}
	if trackingID != "" {
		if err := st.Link(ctx, trackingID, id, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCheckReceipt walks the receipt check through every decision, on the
// tracking item and, for a request accepted without a tracking id, on the
// request's record.
func TestCheckReceipt(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			st := b.st
			c := newClock(st)
			ctx := context.Background()
			type step struct {
				name       string
				do         func(t *testing.T, trk string) // before the check
				owner      string
				then       string // "done", "release" or "" (the check dies)
				want       store.ReceiptDecision
				wantStatus string
			}
			postback := func(key string, rank int, state string, done bool) func(t *testing.T, trk string) {
				return func(t *testing.T, trk string) {
					t.Helper()
					d, _, err := st.Postback(ctx, trk, key, rank, state, "pb-"+key, c.until())
					if err != nil || d != store.Emit {
						t.Fatalf("Postback(%s) = %v, %v; want emit", key, d, err)
					}
					if done {
						if err := st.PostbackDone(ctx, trk, key, "pb-"+key, delivery.About{}); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			tests := map[string][]step{
				"no receipt: one unconfirmed, status accepted": {
					{owner: "c1", then: "done", want: store.ReceiptEmit, wantStatus: "accepted"},
					{name: "a duplicate check", owner: "c2", want: store.ReceiptPublished},
				},
				"sent only: status sent": {
					{do: postback("N101_a", 1, "sent", true), owner: "c1", then: "done", want: store.ReceiptEmit, wantStatus: "sent"},
				},
				"final receipt first: nothing": {
					{do: postback("N102_b", 2, "delivered", true), owner: "c1", want: store.ReceiptFinal},
				},
				"a postback holds the slot: busy, then emit after it is done": {
					{do: postback("N101_a", 1, "sent", false), owner: "c1", want: store.ReceiptBusy},
					{do: func(t *testing.T, trk string) { st.PostbackDone(ctx, trk, "N101_a", "pb-N101_a", delivery.About{}) }, owner: "c2", then: "done",
						want: store.ReceiptEmit, wantStatus: "sent"},
				},
				"a final postback holds the slot: final": {
					{do: postback("N102_b", 2, "delivered", false), owner: "c1", want: store.ReceiptFinal},
				},
				"publish failed: released, the next check emits": {
					{owner: "c1", then: "release", want: store.ReceiptEmit, wantStatus: "accepted"},
					{owner: "c2", then: "done", want: store.ReceiptEmit, wantStatus: "accepted"},
					{owner: "c3", want: store.ReceiptPublished},
				},
				"the check died: busy during its hold, then emitted again": {
					{owner: "c1", want: store.ReceiptEmit, wantStatus: "accepted"},
					{owner: "c2", want: store.ReceiptBusy},
					{do: func(*testing.T, string) { c.add(hold + time.Second) }, owner: "c3", then: "done", want: store.ReceiptEmit, wantStatus: "accepted"},
				},
				"unconfirmed out, then a late receipt is still emitted and later postbacks see the slot free": {
					{owner: "c1", then: "done", want: store.ReceiptEmit, wantStatus: "accepted"},
					{do: postback("N102_b", 2, "delivered", true), owner: "c2", want: store.ReceiptFinal},
				},
			}
			n := 0
			for name, steps := range tests {
				n++
				id, trk := fmt.Sprintf("rc-%d", n), fmt.Sprintf("T-rc-%d", n)
				t.Run(name, func(t *testing.T) {
					accepted(t, st, id, trk)
					for i, s := range steps {
						if s.do != nil {
							s.do(t, trk)
						}
						d, status, err := st.CheckReceipt(ctx, id, trk, s.owner, c.until())
						if err != nil || d != s.want || status != s.wantStatus {
							t.Fatalf("step %d %s: CheckReceipt = %v, %q, %v; want %v, %q", i, s.name, d, status, err, s.want, s.wantStatus)
						}
						switch s.then {
						case "done":
							err = st.ReceiptDone(ctx, id, trk, s.owner)
						case "release":
							err = st.ReceiptRelease(ctx, id, trk, s.owner)
						}
						if err != nil {
							t.Fatal(err)
						}
					}
				})
			}
		})
	}
}

// TestCheckReceiptNoTrackingID: a request accepted without a tracking id
// is marked on its own record, once, and only after its accepted event is
// out; an id with no record is gone.
func TestCheckReceiptNoTrackingID(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			st := b.st
			c := newClock(st)
			ctx := context.Background()
			check := func(id, owner string, want store.ReceiptDecision, wantStatus string) {
				t.Helper()
				d, status, err := st.CheckReceipt(ctx, id, "", owner, c.until())
				if err != nil || d != want || status != wantStatus {
					t.Fatalf("CheckReceipt(%s) = %v, %q, %v; want %v, %q", id, d, status, err, want, wantStatus)
				}
			}
			check("nt-none", "c0", store.ReceiptGone, "")

			// The accepted event still pending: busy until it is out.
			st.Claim(ctx, "nt-1", store.Claim{Owner: "sender", Lease: c.now().Add(time.Minute)})
			st.Accept(ctx, "nt-1", "sender", c.now().Add(time.Minute), store.Outcome{Code: "NO_TRACKINGID"})
			check("nt-1", "c1", store.ReceiptBusy, "")
			st.EventSent(ctx, "nt-1")

			check("nt-1", "c2", store.ReceiptEmit, "accepted")
			check("nt-1", "c3", store.ReceiptBusy, "") // c2 holds it
			if err := st.ReceiptRelease(ctx, "nt-1", "", "c2"); err != nil {
				t.Fatal(err)
			}
			check("nt-1", "c4", store.ReceiptEmit, "accepted")
			c.add(hold + time.Second) // c4 died
			check("nt-1", "c5", store.ReceiptEmit, "accepted")
			if err := st.ReceiptDone(ctx, "nt-1", "", "c5"); err != nil {
				t.Fatal(err)
			}
			check("nt-1", "c6", store.ReceiptPublished, "")
			m, err := st.Get(ctx, "nt-1")
			if err != nil || m.State != store.StateAccepted || m.PendingEvent != "" {
				t.Errorf("record = %+v, %v; want accepted, nothing pending", m, err)
			}
		})
	}
}

// writeCounter is memdb counting UpdateItem calls.
type writeCounter struct {
	*memdb.DB
	writes int
}

func (w *writeCounter) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	w.writes++
	return w.DB.UpdateItem(ctx, in, opts...)
}

// The usual check (the final receipt came) costs a read, not a write that
// would fail its condition (BENCHMARKS.md, cost per million).
func TestCheckAfterFinalReceiptOnlyReads(t *testing.T) {
	ctx := context.Background()
	db := &writeCounter{DB: memdb.New()}
	if err := store.CreateTable(ctx, db.DB, localenv.Table); err != nil {
		t.Fatal(err)
	}
	st := store.New(db, localenv.Table, 0)
	accepted(t, st, "fin-1", "TRK-FIN-1")
	if d, _, err := st.Postback(ctx, "TRK-FIN-1", "N102_b", 2, "delivered", "pb", time.Now().Add(time.Minute)); err != nil || d != store.Emit {
		t.Fatalf("Postback = %v, %v", d, err)
	}
	if err := st.PostbackDone(ctx, "TRK-FIN-1", "N102_b", "pb", delivery.About{}); err != nil {
		t.Fatal(err)
	}
	before := db.writes
	d, _, err := st.CheckReceipt(ctx, "fin-1", "TRK-FIN-1", "c1", time.Now().Add(time.Minute))
	if err != nil || d != store.ReceiptFinal {
		t.Fatalf("CheckReceipt = %v, %v; want final", d, err)
	}
	if n := db.writes - before; n != 0 {
		t.Errorf("the check wrote %d time(s); want none", n)
	}
}
