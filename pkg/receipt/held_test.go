package receipt

import (
	"context"
	"testing"
	"time"

	"github.com/mmsgate/mmsgate/pkg/store"
)

// TestHeldRejectedOrExpiredCheckDropped: a check of a request that ended
// rejected or expired (genuine or forged, with a tracking id or without)
// is dropped at once: no event, no item created.
func TestHeldRejectedOrExpiredCheckDropped(t *testing.T) {
	ctx := context.Background()
	for name, end := range map[string]func(*store.Store, string, time.Time) (bool, *store.Message, error){
		"rejected": func(st *store.Store, id string, now time.Time) (bool, *store.Message, error) {
			return st.Reject(ctx, id, "sender", now, store.Outcome{Code: "E110"})
		},
		"expired": func(st *store.Store, id string, now time.Time) (bool, *store.Message, error) {
			return st.Expire(ctx, id, "sender", now, store.Outcome{Code: "TIMEOUT"})
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t)
			r.st.Claim(ctx, "z", store.Claim{Owner: "sender", Lease: r.clock.now().Add(time.Minute)})
			if won, _, err := end(r.st, "z", r.clock.now()); err != nil || !won {
				t.Fatalf("end = %v, %v", won, err)
			}
			r.st.EventSent(ctx, "z")
			r.forge(t, "z", "T-z", r.clock.now().Add(-time.Hour))
			r.forge(t, "z", "", r.clock.now().Add(-time.Hour))
			r.run(t, time.Hour, time.Minute)
			if got := r.pub.kinds(); len(got) != 0 {
				t.Errorf("events %v; want none", got)
			}
			if r.q.pending() != 0 {
				t.Errorf("%d checks left; want them dropped", r.q.pending())
			}
			if it := r.item(t, "trk#T-z"); it != nil {
				t.Errorf("trk#T-z created: %v", it)
			}
			if m, _ := r.st.Get(ctx, "z"); m == nil || m.State == store.StateAccepted {
				t.Errorf("record %+v", m)
			}
		})
	}
}
