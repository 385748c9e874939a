package postback

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mmsgate/mmsgate/pkg/store"
)

// TestUnkeyableTrackingIDAnswered200: a postback whose TRACKINGID cannot
// be a key (over DynamoDB's 2,048 bytes with its prefix; a longer one is
// cut to 2,048 bytes by the parser and is just as unkeyable), alone or in
// a batch, with or without a CLIENT_REFERENCE naming an accepted request,
// is answered 200 every time (never 5xx for Skycore to retry for ever),
// counted and logged; the other notifications of its batch are processed.
func TestUnkeyableTrackingIDAnswered200(t *testing.T) {
	ctx := context.Background()
	for _, size := range []int{store.MaxKeyBytes - len("trk#") + 1, store.MaxKeyBytes, 5000, 64 << 10 / 2} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			r := newMemRig(t)
			r.st.Claim(ctx, "req-1", store.Claim{Owner: "s", Lease: time.Now().Add(time.Minute)})
			r.st.Accept(ctx, "req-1", "s", time.Now(), store.Outcome{Code: "NO_TRACKINGID"})
			r.st.EventSent(ctx, "req-1")
			r.st.Claim(ctx, "req-2", store.Claim{Owner: "s", Lease: time.Now().Add(time.Minute)})
			r.st.Accept(ctx, "req-2", "s", time.Now(), store.Outcome{TrackingID: "T-2"})
			r.st.EventSent(ctx, "req-2")
			if err := r.st.Link(ctx, "T-2", "req-2", nil); err != nil {
				t.Fatal(err)
			}
			long := strings.Repeat("L", size)
			bodies := map[string]string{
				"alone":            pbXML("N102", long, "req-1"),
				"without a ref":    pbXML("N101", long, ""),
				"first of a batch": batched("N101", []string{long, "T-2"}, []string{"req-1", ""}),
			}
			for name, body := range bodies {
				if len(body) > MaxBody {
					continue
				}
				for try := range 2 {
					if code := r.handle(t, body); code != 200 {
						t.Errorf("%s, try %d: status %d, want 200", name, try, code)
					}
				}
			}
			if !strings.Contains(r.metrics.String(), `"UnkeyableTrackingID"`) {
				t.Errorf("metrics %s; want UnkeyableTrackingID counted", r.metrics.String())
			}
			var joined []string
			for _, e := range r.events {
				joined = append(joined, e.ID+":"+e.Event)
			}
			if want := "[req-2:sent]"; size < MaxBody && fmt.Sprint(joined) != want {
				t.Errorf("events %v; want %s (the batch's other notification, once)", joined, want)
			}
		})
	}
}
