package postback

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/pkg/store"
)

// TestUnkeyableTrackingIDJoinsThroughClientReference: a postback whose
// TRACKINGID cannot be a key (over DynamoDB's 2,048 bytes with its
// prefix; a longer one is cut to 2,048 bytes by the parser and is just as
// unkeyable) is counted and processed under its surrogate key
// (store.KeyOf): with a CLIENT_REFERENCE naming the request Skycore
// accepted with it (recorded NO_TRACKINGID), alone or first of a batch,
// its event is joined to that request, once even when retried, and
// carries the surrogate as trackingId; without one it is any unknown
// tracking id: 503 within the join window, then one unjoined event.
func TestUnkeyableTrackingIDJoinsThroughClientReference(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) *memRig {
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
		return r
	}
	got := func(r *memRig) (evs []string, tids map[string]bool) {
		tids = map[string]bool{}
		for _, e := range r.events {
			evs = append(evs, e.ID+":"+e.Event)
			if e.TrackingID != "T-2" {
				tids[e.TrackingID] = true
			}
		}
		return evs, tids
	}
	for _, size := range []int{store.MaxKeyBytes - len("trk#") + 1, store.MaxKeyBytes, 5000, 64 << 10 / 2} {
		long := strings.Repeat("L", size)
		sur := store.KeyOf(long[:min(size, store.MaxKeyBytes)]) // the parser's cut
		joined := map[string]struct {
			body string
			want []string
		}{
			"alone":            {pbXML("N102", long, "req-1"), []string{"req-1:delivered"}},
			"first of a batch": {batched("N101", []string{long, "T-2"}, []string{"req-1", ""}), []string{"req-1:sent", "req-2:sent"}},
		}
		for name, tt := range joined {
			t.Run(fmt.Sprint(size, " ", name), func(t *testing.T) {
				if len(tt.body) > MaxBody {
					t.Skip("over MaxBody")
				}
				r := setup(t)
				for try := range 2 {
					if code := r.handle(t, tt.body); code != 200 {
						t.Errorf("try %d: status %d, want 200", try, code)
					}
				}
				evs, tids := got(r)
				if diff := cmp.Diff(tt.want, evs); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(map[string]bool{sur: true}, tids); diff != "" {
					t.Errorf("event tracking ids (-want +got):\n%s", diff)
				}
				if !strings.Contains(r.metrics.String(), `"UnkeyableTrackingID"`) {
					t.Errorf("metrics %s; want UnkeyableTrackingID counted", r.metrics.String())
				}
			})
		}
		t.Run(fmt.Sprint(size, " without a ref"), func(t *testing.T) {
			r := setup(t)
			body := pbXML("N101", long, "")
			if len(body) > MaxBody {
				t.Skip("over MaxBody")
			}
			if code := r.handle(t, body); code != 503 {
				t.Errorf("in the join window: status %d, want 503", code)
			}
			now := time.Now()
			r.h.now = func() time.Time { return now.Add(JoinWindow + time.Minute) }
			for try := range 2 {
				if code := r.handle(t, body); code != 200 {
					t.Errorf("after the join window, try %d: status %d, want 200", try, code)
				}
			}
			evs, tids := got(r)
			if diff := cmp.Diff([]string{":sent"}, evs); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]bool{sur: true}, tids); diff != "" {
				t.Errorf("event tracking ids (-want +got):\n%s", diff)
			}
		})
	}
}

// TestUnkeyableTrackingIDLoggedByHash: the warning names the id by length
// and hash, never the id itself.
func TestUnkeyableTrackingIDLoggedByHash(t *testing.T) {
	hs := newHarness(t)
	long := strings.Repeat("Q", 2100)
	hs.invoke(t, post(pbXML("N101", long, "")))
	logs := hs.logs.String()
	if strings.Contains(logs, strings.Repeat("Q", 64)) {
		t.Error("the over-long tracking id is logged")
	}
	if !strings.Contains(logs, `"trackingIdBytes":2048`) || !strings.Contains(logs, store.KeyOf(long[:store.MaxKeyBytes])) {
		t.Errorf("no length and hash in the logs:\n%.2000s", logs)
	}
}

// TestUnkeyableTrackingIDAcceptsAsTheSenderWould: an in-doubt request
// whose acceptance a postback with an unkeyable TRACKINGID proves is
// recorded as the sender records such an answer: accepted NO_TRACKINGID
// without a tracking id (never the surrogate), then the postback's own
// event with the surrogate, as docs/postback.md says.
func TestUnkeyableTrackingIDAcceptsAsTheSenderWould(t *testing.T) {
	ctx := context.Background()
	long := strings.Repeat("L", 2100)
	sur := store.KeyOf(long[:store.MaxKeyBytes]) // the parser's cut
	for _, code := range []string{"N101", "N102"} {
		t.Run(code, func(t *testing.T) {
			r := newMemRig(t)
			if ok, _, err := r.st.Claim(ctx, "req-3", store.Claim{Owner: "s", Lease: time.Now().Add(time.Minute)}); !ok || err != nil {
				t.Fatalf("Claim = %v, %v", ok, err)
			}
			if ok, err := r.st.Doubt(ctx, "req-3", "s", time.Now().Add(time.Hour), store.Outcome{Code: "TIMEOUT"}); !ok || err != nil {
				t.Fatalf("Doubt = %v, %v", ok, err)
			}
			if status := r.handle(t, pbXML(code, long, "req-3")); status != 200 {
				t.Fatalf("status %d, want 200", status)
			}
			type ev struct{ ID, Event, Code, TrackingID string }
			var got []ev
			for _, e := range r.events {
				got = append(got, ev{e.ID, e.Event, e.Code, e.TrackingID})
			}
			want := []ev{{"req-3", "accepted", "NO_TRACKINGID", ""}, {"req-3", map[string]string{"N101": "sent", "N102": "delivered"}[code], code, sur}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			m, err := r.st.Get(ctx, "req-3")
			if err != nil || m.State != store.StateAccepted || m.TrackingID != "" || m.Code != "NO_TRACKINGID" {
				t.Errorf("record = %+v, %v; want accepted NO_TRACKINGID without a tracking id", m, err)
			}
		})
	}
}
