package sender

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/sim"
	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/metric"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// TestAsPeopleWrite: a request written as people write it (a "+1 (774)
// 319-9144" number, a vCard phone with separators, an extensionless CDN
// photo URL, a 200-character fallback) goes out with the XML Skycore
// expects, and its accepted event lists the advice it does not follow.
func TestAsPeopleWrite(t *testing.T) {
	hs := newHarness(t, savedMMS48211, nil)
	hs.mustInvoke(t, context.Background(), loadEvent(t, "as-people-write"), 0)

	reqs := hs.sim.Requests()
	if len(reqs) != 1 || !reqs[0].Accepted {
		t.Fatalf("simulator saw %+v, want one accepted request", reqs)
	}
	raw := reqs[0].Raw
	for _, want := range []string{
		"<TO>17743199144</TO>",
		"<NUMBER>18005550100</NUMBER>",
		"<PHOTOURL>https://cdn.example.com/img/8812?w=400</PHOTOURL>",
		"<CLIENT_REFERENCE>as-people-write-1</CLIENT_REFERENCE>",
	} {
		if !strings.Contains(raw, want) {
			t.Errorf("the XML sent lacks %s:\n%s", want, raw)
		}
	}
	_, text, _ := strings.Cut(raw, "<FALLBACKSMSTEXT>")
	text, _, _ = strings.Cut(text, "</FALLBACKSMSTEXT>")
	if n := len([]rune(text)); n != 200 {
		t.Errorf("FALLBACKSMSTEXT has %d characters, want the request's 200: %q", n, text)
	}
	if strings.ContainsAny(reqs[0].To, "+ ()-") {
		t.Errorf("simulator's TO = %q, want digits only", reqs[0].To)
	}

	evs, err := hs.env.DrainEvents()
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Event != delivery.Accepted {
		t.Fatalf("events %+v, want one accepted", evs)
	}
	if diff := cmp.Diff([]string{sendreq.WarnFallbackLong}, evs[0].Warnings); diff != "" {
		t.Errorf("accepted.warnings (-want +got):\n%s", diff)
	}
	if evs[0].To != "17743199144" {
		t.Errorf("accepted.to = %q, want the digits sent", evs[0].To)
	}
	if !strings.Contains(hs.logs.String(), `"`+metric.RequestWarning+`":1`) || !strings.Contains(hs.logs.String(), `"Code":"`+sendreq.WarnFallbackLong+`"`) {
		t.Errorf("no %s metric with Code=%s in the logs", metric.RequestWarning, sendreq.WarnFallbackLong)
	}
}

// savedMMS48211 gives the simulator the saved MMS of the sample requests
// (as cmd/mmsgate-local does).
func savedMMS48211(c *sim.Config) {
	c.Accounts[0].Templates = append(c.Accounts[0].Templates, sim.Template{MMSID: 48211, Slides: 8})
}

// failingEvents fails the first n publications, then publishes.
type failingEvents struct {
	mu   sync.Mutex
	n    int
	next publisher
}

func (f *failingEvents) Publish(ctx context.Context, e delivery.Event) error {
	f.mu.Lock()
	fail := f.n > 0
	f.n--
	f.mu.Unlock()
	if fail {
		return errors.New("queue unavailable")
	}
	return f.next.Publish(ctx, e)
}

// TestWarningsSurviveRedelivery: the accepted event is recorded, its
// publication fails, and the next delivery publishes it from the record,
// with the request's warnings (a hand-off or a postback publisher has no
// request to compute them from: they are on the record).
func TestWarningsSurviveRedelivery(t *testing.T) {
	hs := newHarness(t, savedMMS48211, nil)
	real := hs.h.d.Events
	hs.h.d.Events = &failingEvents{n: 1, next: real}
	ev := loadEvent(t, "as-people-write")
	hs.mustInvoke(t, context.Background(), ev, 1)
	if evs, _ := hs.env.DrainEvents(); len(evs) != 0 {
		t.Fatalf("events %+v after a failed publication, want none", evs)
	}
	hs.mustInvoke(t, context.Background(), ev, 0)
	evs, _ := hs.env.DrainEvents()
	if len(evs) != 1 || evs[0].Event != delivery.Accepted {
		t.Fatalf("events %+v, want the pending accepted event", evs)
	}
	if diff := cmp.Diff([]string{sendreq.WarnFallbackLong}, evs[0].Warnings); diff != "" {
		t.Errorf("redelivered accepted.warnings (-want +got):\n%s", diff)
	}
	if n := len(hs.sim.Requests()); n != 1 {
		t.Errorf("%d calls, want 1 (the redelivery only publishes)", n)
	}
	m, err := hs.h.d.Store.(*store.Store).Get(context.Background(), "as-people-write-1")
	if err != nil || m == nil || !slices.Equal(m.Warnings, []string{sendreq.WarnFallbackLong}) {
		t.Errorf("record %+v, %v: want the warnings kept", m, err)
	}
}

// oneRequest is an SQS batch of one request with body, as enqueued now.
func oneRequest(t *testing.T, msgID, body string) events.SQSEvent {
	ev := withBody(t, body)
	ev.Records[0].MessageId = msgID
	return ev
}

// TestWhoIsAtFault: E100 and E111 are classed by who caused them
// (docs/codes.md, "Who is at fault").
func TestWhoIsAtFault(t *testing.T) {
	// It waits on leases and windows: overlap it with the others.
	t.Parallel()
	t.Run("E100 once is rejected", func(t *testing.T) {
		hs := newHarness(t, func(c *sim.Config) {
			c.Faults = append(c.Faults, sim.Fault{Kind: "E100", Match: sim.Match{ClientReferencePrefix: "bad-"}})
		}, nil)
		hs.mustInvoke(t, context.Background(), oneRequest(t, "m-once", `{"id":"bad-once","to":"17743199144","mmsId":1000}`), 0)
		if diff := cmp.Diff([]string{"bad-once:rejected:E100"}, hs.kinds(t)); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if n := strings.Count(hs.logs.String(), `"`+metric.ConfigError+`":1`); n != 0 {
			t.Errorf("%d ConfigError metrics for one bad request, want 0", n)
		}
	})
	t.Run("E100 for many ids is the deployment's", func(t *testing.T) {
		hs := newHarness(t, func(c *sim.Config) {
			c.Faults = append(c.Faults, sim.Fault{Kind: "E100", Match: sim.Match{ClientReferencePrefix: "bad-"}})
		}, nil)
		var got []string
		for i := range skycore.E100BurstIDs + 2 {
			failures := 0
			if i >= skycore.E100BurstIDs-1 {
				failures = 1 // retried: the message stays queued
			}
			hs.mustInvoke(t, context.Background(), oneRequest(t, fmt.Sprint("m-", i), fmt.Sprintf(`{"id":"bad-%d","to":"17743199144","mmsId":1000}`, i)), failures)
			got = append(got, hs.kinds(t)...)
		}
		var want []string
		for i := range skycore.E100BurstIDs + 2 {
			kind := "rejected"
			if i >= skycore.E100BurstIDs-1 {
				kind = "retrying"
			}
			want = append(want, fmt.Sprintf("bad-%d:%s:E100", i, kind))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("events in order (-want +got):\n%s", diff)
		}
		if n := strings.Count(hs.logs.String(), `"`+metric.ConfigError+`":1`); n != 3 {
			t.Errorf("%d ConfigError metrics, want 3 (the 5th, 6th and 7th id)", n)
		}
		// A retried one answered E100 again is still the deployment's.
		hs.mustInvoke(t, context.Background(), oneRequest(t, "m-again", `{"id":"bad-6","to":"17743199144","mmsId":1000}`), 1)
		m, _ := hs.h.d.Store.(*store.Store).Get(context.Background(), "bad-6")
		if m == nil || m.Final() {
			t.Errorf("bad-6 = %+v after a second E100 in the burst, want still open", m)
		}
	})
	for _, tt := range []struct {
		name, from, want string
		configErrors     int
	}{
		{name: "E111 with the default from is the deployment's", from: "", want: "e111-1:retrying:E111", configErrors: 1},
		{name: "E111 with the default from written out", from: `"from":"60856",`, want: "e111-1:retrying:E111", configErrors: 1},
		{name: "E111 with the request's own from is rejected", from: `"from":"12345",`, want: "e111-1:rejected:E111"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, func(c *sim.Config) {
				c.Faults = append(c.Faults, sim.Fault{Kind: "E111", Match: sim.Match{ClientReferencePrefix: "e111-"}})
			}, nil)
			failures := 0
			if tt.configErrors > 0 {
				failures = 1
			}
			hs.mustInvoke(t, context.Background(), oneRequest(t, "m-e111", `{"id":"e111-1",`+tt.from+`"to":"17743199144","mmsId":1000}`), failures)
			if diff := cmp.Diff([]string{tt.want}, hs.kinds(t)); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if n := strings.Count(hs.logs.String(), `"`+metric.ConfigError+`":1`); n != tt.configErrors {
				t.Errorf("%d ConfigError metrics, want %d", n, tt.configErrors)
			}
		})
	}
}

// scriptedSkycore answers each call with the next error of codes, in a loop.
type scriptedSkycore struct {
	mu    sync.Mutex
	codes []apperr.Code
	calls int
}

func (s *scriptedSkycore) SendSavedMMS(context.Context, string, *sendreq.Request) (*skycore.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.codes[s.calls%len(s.codes)]
	s.calls++
	return nil, &apperr.Error{Code: c, Class: apperr.Retry, Op: "test", Message: "failing on purpose"}
}

// TestRetryingIsBounded: a request failing for the whole retry window, with
// a fast clock, gets at most as many retrying events as docs/events.md
// ("Bounded noise") says, and then its one expired event.
func TestRetryingIsBounded(t *testing.T) {
	// It waits on leases and windows: overlap it with the others.
	t.Parallel()
	for _, tt := range []struct {
		name  string
		codes []apperr.Code
		every time.Duration // between attempts
		bound int
	}{
		// One code: the first, then one an hour.
		{name: "one code", codes: []apperr.Code{"E503"}, every: 7 * time.Minute, bound: 1 + int(DefaultRetryWindow/skycore.RetryingEvery)},
		// Alternating codes: at most one per 30 minutes.
		{name: "alternating codes", codes: []apperr.Code{"E503", "HTTP_502"}, every: 5 * time.Minute, bound: skycore.RetryingBound(DefaultRetryWindow)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hs := newHarness(t, nil, nil)
			start := time.Now()
			var mu sync.Mutex
			now := start
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			hs.h.now = clock
			hs.h.d.Store.(*store.Store).SetClock(clock)
			api := &scriptedSkycore{codes: tt.codes}
			hs.h.d.Skycore = api

			ev := oneRequest(t, "m-noisy", `{"id":"noisy-1","to":"17743199144","mmsId":1000}`)
			ev.Records[0].Attributes["SentTimestamp"] = strconv.FormatInt(start.UnixMilli(), 10)
			var got []delivery.Event
			for i := 0; ; i++ {
				if i > 2*int(DefaultRetryWindow/tt.every) {
					t.Fatal("never expired")
				}
				resp, err := hs.invoke(t, context.Background(), ev)
				if err != nil {
					t.Fatal(err)
				}
				evs, _ := hs.env.DrainEvents()
				got = append(got, evs...)
				if len(resp.BatchItemFailures) == 0 {
					break
				}
				mu.Lock()
				now = now.Add(tt.every)
				mu.Unlock()
			}
			retrying := 0
			for i, e := range got {
				switch {
				case e.Event == delivery.Retrying:
					retrying++
				case e.Event == delivery.Expired && i == len(got)-1:
				default:
					t.Errorf("event %d: %+v, want retrying events then one expired", i, e)
				}
			}
			if retrying > tt.bound || retrying < 2 {
				t.Errorf("%d retrying events over %d calls in %s, want 2..%d", retrying, api.calls, DefaultRetryWindow, tt.bound)
			}
			if api.calls < 2*retrying {
				t.Errorf("%d calls for %d retrying events: the rule suppressed nothing", api.calls, retrying)
			}
			t.Logf("%d calls, %d retrying events (bound %d)", api.calls, retrying, tt.bound)
		})
	}
}

// refuseFirstAccept is the real store, except that its first acceptance
// is refused for good.
type refuseFirstAccept struct {
	*store.Store
	refused atomic.Bool
}

func (r *refuseFirstAccept) Accept(ctx context.Context, id, owner string, hold time.Time, o store.Outcome) (bool, *store.Message, error) {
	if r.refused.CompareAndSwap(false, true) {
		return false, nil, &apperr.Error{Code: apperr.CodeStore, Class: apperr.Config, Op: "store.Accept", Message: "ValidationException"}
	}
	return r.Store.Accept(ctx, id, owner, hold, o)
}

// TestWarningsSurviveHandoff: an acceptance that could not be recorded is
// handed off on the send queue; the delivery that records it lists the
// request's warnings in the accepted event too.
func TestWarningsSurviveHandoff(t *testing.T) {
	hs := newHarness(t, savedMMS48211, nil)
	hs.h.d.Store = &refuseFirstAccept{Store: hs.h.d.Store.(*store.Store)}
	hs.mustInvoke(t, context.Background(), loadEvent(t, "as-people-write"), 0)
	handoffs := hs.drain(t, localenv.SendQueue)
	if len(handoffs) != 1 {
		t.Fatalf("send queue = %+v, want the signed hand-off", handoffs)
	}
	hs.mustInvoke(t, context.Background(), fromQueue(t, handoffs[0]), 0)
	evs, _ := hs.env.DrainEvents()
	if len(evs) != 1 || evs[0].Event != delivery.Accepted {
		t.Fatalf("events %+v, want one accepted", evs)
	}
	if diff := cmp.Diff([]string{sendreq.WarnFallbackLong}, evs[0].Warnings); diff != "" {
		t.Errorf("accepted.warnings after a hand-off (-want +got):\n%s", diff)
	}
	if n := len(hs.sim.Requests()); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}
