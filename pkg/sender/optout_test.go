package sender

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// optRig is the handler with a counting Skycore and the store it shares.
type optRig struct {
	hs    *harness
	st    *store.Store
	mu    sync.Mutex
	calls map[string]int
}

func newOptRig(t *testing.T, cfg func(*Config)) *optRig {
	t.Helper()
	r := &optRig{hs: newHarness(t, nil, cfg), calls: map[string]int{}}
	r.st = store.New(r.hs.db, localenv.Table, 0)
	r.hs.h.d.Skycore = apiFunc(func(_ context.Context, _ string, req *sendreq.Request) (*skycore.Response, error) {
		r.mu.Lock()
		r.calls[req.ID]++
		r.mu.Unlock()
		if strings.HasSuffix(req.To, "0114") {
			return nil, &apperr.Error{Code: "E114", Class: apperr.Permanent, Op: "skycore.SendSavedMMS", Message: "blacklisted"}
		}
		return &skycore.Response{Status: skycore.StatusSuccess, TrackingID: "T-" + req.ID}, nil
	})
	return r
}

func (r *optRig) send(t *testing.T, id, to, from string) {
	t.Helper()
	body := fmt.Sprintf(`{"id":%q,"to":%q,"mmsId":1000}`, id, to)
	if from != "" {
		body = fmt.Sprintf(`{"id":%q,"to":%q,"from":%q,"mmsId":1000}`, id, to, from)
	}
	r.hs.mustInvoke(t, context.Background(), record(t, id, body, time.Now()), 0)
}

func (r *optRig) called(id string) int { r.mu.Lock(); defer r.mu.Unlock(); return r.calls[id] }

// events drains the terminal events by id.
func (r *optRig) events(t *testing.T) map[string]delivery.Event {
	t.Helper()
	evs, err := r.hs.env.DrainEvents()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]delivery.Event{}
	for _, e := range evs {
		if delivery.Terminal(e.Event) {
			out[e.ID] = e
		}
	}
	return out
}

// TestOptedOut: after an opt-out (STOP to 60856) a request to that number
// from that code is rejected OPTED_OUT, suppressed, with no Skycore call,
// even with SUPPRESS_CODES=none; a request from another code goes out; an
// opt-in (START) restores sending. The rejected event says why without
// naming the person's message.
func TestOptedOut(t *testing.T) {
	r := newOptRig(t, nil) // SuppressCodes nil: SUPPRESS_CODES=none
	ctx := context.Background()
	const num = "17745550001"
	stopAt := time.Now().Add(-time.Minute)
	if _, err := r.st.OptOut(ctx, num, "60856", store.Word{Keyword: "STOP", MessageID: "tx-stop-1", At: stopAt}); err != nil {
		t.Fatal(err)
	}
	r.send(t, "o1", num, "")           // the default FROM, 60856: refused
	r.send(t, "o2", num, "60856")      // the same code, given: refused
	r.send(t, "o3", num, "70000")      // another code: sent
	r.send(t, "o4", "17745550002", "") // another number: sent
	evs := r.events(t)
	for _, id := range []string{"o1", "o2"} {
		e := evs[id]
		if e.Event != delivery.Rejected || e.Code != store.CodeOptedOut || !e.Suppressed {
			t.Errorf("%s = %s %s suppressed=%v, want rejected OPTED_OUT suppressed", id, e.Event, e.Code, e.Suppressed)
		}
		if r.called(id) != 0 {
			t.Errorf("%s called Skycore %d times", id, r.called(id))
		}
		if strings.Contains(e.Error, "tx-stop-1") || !strings.Contains(e.Error, "STOP") || !strings.Contains(e.Error, "60856") {
			t.Errorf("%s error = %q: want why (STOP to 60856), not the message id", id, e.Error)
		}
	}
	for _, id := range []string{"o3", "o4"} {
		if e := evs[id]; e.Event != delivery.Accepted || r.called(id) != 1 {
			t.Errorf("%s = %s (%d calls), want accepted with one call", id, e.Event, r.called(id))
		}
	}
	if _, err := r.st.OptIn(ctx, num, "60856", store.Word{Keyword: "START", MessageID: "tx-start-1", At: stopAt.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	r.send(t, "o5", num, "")
	if e := r.events(t)["o5"]; e.Event != delivery.Accepted || r.called("o5") != 1 {
		t.Errorf("after START: o5 = %s %s (%d calls), want accepted", e.Event, e.Code, r.called("o5"))
	}
	// An operator's entry for every code.
	if err := r.st.SuppressByOperator(ctx, num, "", "asked by phone"); err != nil {
		t.Fatal(err)
	}
	r.send(t, "o6", num, "70000")
	if e := r.events(t)["o6"]; e.Code != store.CodeOptedOut || !e.Suppressed || r.called("o6") != 0 {
		t.Errorf("after suppress add: o6 = %s %s (%d calls), want OPTED_OUT with no call", e.Event, e.Code, r.called("o6"))
	}
}

// TestSuppressedNamesNoOtherRequest: a request refused because Skycore
// answered E114 to another request is told why (E114, until lifted)
// without that request's id; the sender logs the entry as until lifted.
func TestSuppressedNamesNoOtherRequest(t *testing.T) {
	r := newOptRig(t, func(c *Config) { c.SuppressCodes, c.SuppressTTL = []string{"E110", "E114"}, time.Hour })
	const num = "17745550114"
	r.send(t, "secret-order-1", num, "")
	r.send(t, "b2", num, "")
	evs := r.events(t)
	if e := evs["secret-order-1"]; e.Code != "E114" || e.Suppressed {
		t.Errorf("first = %+v, want Skycore's E114", e)
	}
	e := evs["b2"]
	if e.Code != "E114" || !e.Suppressed || r.called("b2") != 0 {
		t.Errorf("b2 = %s %s suppressed=%v (%d calls), want E114 suppressed, no call", e.Event, e.Code, e.Suppressed, r.called("b2"))
	}
	if strings.Contains(e.Error, "secret-order-1") || !strings.Contains(e.Error, "until it is lifted") {
		t.Errorf("b2 error = %q: want until it is lifted, and not the other request's id", e.Error)
	}
	if !strings.Contains(r.hs.logs.String(), `"until":"lifted"`) {
		t.Error(`the sender's log does not say the E114 entry lasts until lifted`)
	}
}

// claimWatch is the store, noting for each claim whether the opt-out was
// already recorded when the claim started.
type claimWatch struct {
	*store.Store
	optedOut *atomic.Bool
	mu       sync.Mutex
	after    map[string]bool
}

func (c *claimWatch) Claim(ctx context.Context, id string, cl store.Claim) (bool, *store.Message, error) {
	after := c.optedOut.Load()
	c.mu.Lock()
	if _, seen := c.after[id]; !seen {
		c.after[id] = after
	}
	c.mu.Unlock()
	return c.Store.Claim(ctx, id, cl)
}

// TestOptOutRacesSends: sends to a number run while its opt-out is
// recorded; every request whose claim started after the opt-out was
// recorded is refused without a call (docs/events.md "An opt-out racing
// a send"). One whose claim came first may go out.
func TestOptOutRacesSends(t *testing.T) {
	r := newOptRig(t, nil)
	var optedOut atomic.Bool
	w := &claimWatch{Store: r.st, optedOut: &optedOut, after: map[string]bool{}}
	r.hs.h.d.Store = w
	const num = "17745550077"
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(30 * time.Millisecond)
		if _, err := r.st.OptOut(context.Background(), num, "60856", store.Word{Keyword: "STOP", MessageID: "tx-race"}); err != nil {
			t.Error(err)
		}
		optedOut.Store(true)
	}()
	var ids []string
	for i := 0; ; i++ {
		select {
		case <-done:
		default:
		}
		id := fmt.Sprintf("race-%03d", i)
		ids = append(ids, id)
		r.send(t, id, num, "")
		if optedOut.Load() {
			// A few more after the opt-out is recorded.
			for k := 1; k <= 3; k++ {
				id := fmt.Sprintf("race-%03d", i+k)
				ids = append(ids, id)
				r.send(t, id, num, "")
			}
			break
		}
	}
	<-done
	evs := r.events(t)
	before, after := 0, 0
	for _, id := range ids {
		e := evs[id]
		if w.after[id] {
			after++
			if e.Code != store.CodeOptedOut || !e.Suppressed || r.called(id) != 0 {
				t.Errorf("%s claimed after the opt-out: %s %s (%d calls), want OPTED_OUT with no call", id, e.Event, e.Code, r.called(id))
			}
		} else {
			before++
			if e.Event != delivery.Accepted && e.Code != store.CodeOptedOut {
				t.Errorf("%s: %s %s", id, e.Event, e.Code)
			}
		}
	}
	if after < 3 {
		t.Errorf("only %d sends claimed after the opt-out (%d before): the race was not run", after, before)
	}
}
