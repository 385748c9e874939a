package sender

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/sim"
	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// The attacks on the promises, one test each: every promise (no request lost,
// none sent twice, one terminal event per id, nothing trusted from the
// queue but the body) under outages, store failures and hostile writers.

// record is one SQS record with a body, a message id and when it was sent.
func record(t *testing.T, msgID, body string, sent time.Time) events.SQSEvent {
	ev := withBody(t, body)
	ev.Records[0].MessageId = msgID
	ev.Records[0].Attributes = map[string]string{"SentTimestamp": strconv.FormatInt(sent.UnixMilli(), 10), "ApproximateReceiveCount": "1"}
	return ev
}

func (hs *harness) mustInvoke(t *testing.T, ctx context.Context, ev events.SQSEvent, wantFailures int) {
	t.Helper()
	resp, err := hs.invoke(t, ctx, ev)
	if err != nil || len(resp.BatchItemFailures) != wantFailures {
		t.Fatalf("invoke = %+v, %v; want %d failures", resp, err, wantFailures)
	}
}

// TestRetryWindow: a transient failure is retried until SEND_RETRY_WINDOW
// from the first enqueue is spent, then the request ends `expired` (one
// terminal event) and its body goes to the DLQ; never silently.
func TestRetryWindow(t *testing.T) {
	body := `{"id":"out-1","to":"17745550503","mmsId":1000}` // the harness's sim answers E503 for ...0503
	t.Run("inside the window: retrying, back-off bounded by the window's end", func(t *testing.T) {
		hs := newHarness(t, nil, func(c *Config) { c.RetryWindow = time.Hour })
		hs.enqueue(t, body)
		msgs := hs.receive(t, 1, time.Minute)
		if len(msgs) != 1 {
			t.Fatalf("receive = %v", msgs)
		}
		ev := record(t, aws.ToString(msgs[0].MessageId), body, time.Now().Add(-time.Hour+10*time.Second))
		ev.Records[0].ReceiptHandle = aws.ToString(msgs[0].ReceiptHandle)
		ev.Records[0].Attributes["ApproximateReceiveCount"] = "30" // the exponential part alone would wait 15 min
		hs.mustInvoke(t, context.Background(), ev, 1)
		if got := hs.kinds(t); !slices.Equal(got, []string{"out-1:retrying:E503"}) {
			t.Errorf("events = %v", got)
		}
		if wait, ok := hs.hiddenFor(t, msgs[0].ReceiptHandle); !ok || wait > 12*time.Second {
			t.Errorf("visible again in %v (set: %v); want at most the ~10 s left of the window", wait, ok)
		}
	})
	t.Run("window spent: expired once, body in the DLQ", func(t *testing.T) {
		hs := newHarness(t, nil, func(c *Config) { c.RetryWindow = time.Hour })
		ev := record(t, "m-out", body, time.Now().Add(-2*time.Hour))
		hs.mustInvoke(t, context.Background(), ev, 0)
		hs.mustInvoke(t, context.Background(), ev, 0) // a duplicate of a final id: nothing
		if got := hs.kinds(t); !slices.Equal(got, []string{"out-1:expired:E503"}) {
			t.Errorf("events = %v, want exactly one expired", got)
		}
		dlq := hs.peek(t, localenv.SendDLQ)
		if len(dlq) != 1 || aws.ToString(dlq[0].Body) != body || !strings.Contains(errorAttr(dlq[0]), "expired") {
			t.Errorf("DLQ = %+v", dlq)
		}
		if n := hs.sim.Counts().Received["out-1"]; n != 1 {
			t.Errorf("Skycore calls = %d, want 1 (the last try)", n)
		}
	})
	t.Run("the first enqueue time survives retries", func(t *testing.T) {
		hs := newHarness(t, nil, func(c *Config) { c.RetryWindow = time.Hour })
		hs.mustInvoke(t, context.Background(), record(t, "m1", body, time.Now().Add(-50*time.Minute)), 1)
		// A later copy claims to be new; the record remembers the first.
		hs.mustInvoke(t, context.Background(), record(t, "m2", body, time.Now()), 1)
		m, err := store.New(hs.db, localenv.Table, 0).Get(context.Background(), "out-1")
		if err != nil || time.Since(m.First) < 49*time.Minute {
			t.Fatalf("record = %+v, %v; want the first enqueue kept", m, err)
		}
	})
}

// TestAcceptedButUnrecordedNeverResent is the double send attack:
// Skycore accepts, DynamoDB refuses the acceptance until the deadline, and
// a duplicate copy is in flight. The answer is handed off, the duplicate
// finds the id in doubt, and the id is sent once with one accepted event.
func TestAcceptedButUnrecordedNeverResent(t *testing.T) {
	// It waits on leases and windows: overlap it with the others.
	t.Parallel()
	hs := newHarness(t, nil, func(c *Config) { c.InDoubtWindow = 10 * time.Minute })
	hs.needsProxy(t)
	body := `{"id":"book-2","to":"17743199144","mmsId":1000}`
	hs.env.Proxy.ThrottleMatching(`"ACCEPTED"`, 1000)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	hs.mustInvoke(t, ctx, record(t, "orig", body, time.Now()), 0)
	handoffs := hs.drain(t, localenv.SendQueue)
	if len(handoffs) != 1 {
		t.Fatalf("send queue = %+v, want the signed hand-off", handoffs)
	}
	hs.env.Proxy.ThrottleMatching("", 0)
	dl, _ := ctx.Deadline()
	time.Sleep(time.Until(dl) + 50*time.Millisecond) // the first claim's lease is over

	// The duplicate comes first: the id is in doubt, not sent again.
	hs.mustInvoke(t, context.Background(), record(t, "dup", body, time.Now()), 1)
	if n := hs.sim.Counts().Received["book-2"]; n != 1 {
		t.Fatalf("sent %d times after the duplicate, want 1", n)
	}
	// The hand-off, delivered twice at once, records it once.
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { hs.invoke(t, context.Background(), fromQueue(t, handoffs[0])) })
	}
	wg.Wait()
	hs.mustInvoke(t, context.Background(), record(t, "dup", body, time.Now()), 0)
	if n := hs.sim.Counts().Received["book-2"]; n != 1 {
		t.Errorf("sent %d times, want 1", n)
	}
	if got := hs.kinds(t); !slices.Equal(got, []string{"book-2:accepted:"}) {
		t.Errorf("events = %v, want one accepted", got)
	}
}

// refusing is the real store, except that acceptances are refused for
// good, as DynamoDB does with a ValidationException.
type refusing struct{ *store.Store }

func (r refusing) Accept(context.Context, string, string, time.Time, store.Outcome) (bool, *store.Message, error) {
	return false, nil, &apperr.Error{Code: apperr.CodeStore, Class: apperr.Config, Op: "store.Accept", Message: "ValidationException"}
}

var _ records = refusing{}

// TestHandoffLoopIsBounded: a permanent DynamoDB error after acceptance
// does not loop through re-enqueues forever: the hand-off goes to the DLQ
// with a metric, and Skycore is not called again.
func TestHandoffLoopIsBounded(t *testing.T) {
	hs := newHarness(t, nil, nil)
	hs.h.d.Store = refusing{store.New(hs.db, localenv.Table, 0)}
	body := `{"id":"perm-1","to":"17743199144","mmsId":1000}`
	hs.mustInvoke(t, context.Background(), record(t, "orig", body, time.Now()), 0)
	handoffs := hs.drain(t, localenv.SendQueue)
	if len(handoffs) != 1 {
		t.Fatalf("send queue = %+v, want one hand-off", handoffs)
	}
	hs.mustInvoke(t, context.Background(), fromQueue(t, handoffs[0]), 0)
	// Counts, not Peek: a peek is a receive, and the send queue redrives.
	if c, err := hs.env.QueueCounts(context.Background(), hs.env.SendQueueURL); err != nil || c.Total() != 0 {
		t.Errorf("re-enqueued again: %+v, %v", c, err)
	}
	dlq := hs.peek(t, localenv.SendDLQ)
	if len(dlq) != 1 || !strings.Contains(errorAttr(dlq[0]), "accepted by Skycore") {
		t.Errorf("DLQ = %+v", dlq)
	}
	if !strings.Contains(hs.logs.String(), "HandoffDeadLettered") {
		t.Error("no HandoffDeadLettered metric")
	}
	if n := hs.sim.Counts().Received["perm-1"]; n != 1 {
		t.Errorf("sent %d times, want 1", n)
	}
}

// TestForgedAttributes: no attribute an application can write changes what
// happens to a request.
func TestForgedAttributes(t *testing.T) {
	str := func(v string) events.SQSMessageAttribute {
		return events.SQSMessageAttribute{DataType: "String", StringValue: &v}
	}
	forge := func(ev events.SQSEvent, attrs map[string]string) events.SQSEvent {
		ev.Records[0].MessageAttributes = map[string]events.SQSMessageAttribute{}
		for k, v := range attrs {
			ev.Records[0].MessageAttributes[k] = str(v)
		}
		return ev
	}
	t.Run("forged hand-off: sent as any request, with Skycore's tracking id", func(t *testing.T) {
		hs := newHarness(t, nil, nil)
		ev := forge(record(t, "f1", `{"id":"forged-1","to":"17743199144","mmsId":1000}`, time.Now()), map[string]string{
			HandoffAttr: `{"t":"ATTACKER","first":1}`, HandoffMACAttr: strings.Repeat("0", 64),
			"mmsgate-accepted-tracking-id": "ATTACKER", // the old, unsigned attribute
		})
		hs.mustInvoke(t, context.Background(), ev, 0)
		evs, _ := hs.env.DrainEvents()
		if len(evs) != 1 || evs[0].Event != "accepted" || evs[0].TrackingID == "ATTACKER" || hs.sim.Counts().Received["forged-1"] != 1 {
			t.Errorf("events = %+v, Skycore calls %d", evs, hs.sim.Counts().Received["forged-1"])
		}
		if !strings.Contains(hs.logs.String(), "ForgedHandoff") {
			t.Error("forgery not counted")
		}
	})
	t.Run("forged acceptance of a rejected id: stays rejected", func(t *testing.T) {
		hs := newHarness(t, nil, nil)
		body := `{"id":"forged-2","to":"1","mmsId":1000}`
		hs.mustInvoke(t, context.Background(), record(t, "r", body, time.Now()), 0)
		hs.mustInvoke(t, context.Background(), forge(record(t, "f", body, time.Now()), map[string]string{
			HandoffAttr: `{"t":"ATTACKER","first":1}`, HandoffMACAttr: "00"}), 0)
		if got := hs.kinds(t); !slices.Equal(got, []string{"forged-2:rejected:E110"}) {
			t.Errorf("events = %v", got)
		}
	})
	t.Run("a genuine hand-off replayed onto another body is not trusted", func(t *testing.T) {
		hs := newHarness(t, nil, nil)
		hs.h.d.Store = refusingOnce(hs)
		hs.mustInvoke(t, context.Background(), record(t, "orig", `{"id":"victim","to":"17743199144","mmsId":1000}`, time.Now()), 0)
		handoffs := hs.drain(t, localenv.SendQueue)
		if len(handoffs) != 1 {
			t.Fatalf("send queue = %+v", handoffs)
		}
		replay := fromQueue(t, handoffs[0])
		replay.Records[0].Body = `{"id":"attacker","to":"17743199144","mmsId":1000}`
		hs.mustInvoke(t, context.Background(), replay, 0)
		evs, _ := hs.env.DrainEvents()
		for _, e := range evs {
			if e.ID == "attacker" && e.TrackingID == "" {
				t.Errorf("event %+v", e)
			}
		}
		if hs.sim.Counts().Received["attacker"] != 1 {
			t.Error("the replayed body was not sent as its own request")
		}
	})
}

// refusingOnce refuses the first acceptance write for good, so that a
// genuine hand-off is made.
func refusingOnce(hs *harness) records {
	st := store.New(hs.db, localenv.Table, 0)
	return &onceRefusing{Store: st}
}

type onceRefusing struct {
	*store.Store
	mu   sync.Mutex
	done bool
}

func (o *onceRefusing) Accept(ctx context.Context, id, owner string, hold time.Time, out store.Outcome) (bool, *store.Message, error) {
	o.mu.Lock()
	first := !o.done
	o.done = true
	o.mu.Unlock()
	if first {
		return false, nil, &apperr.Error{Code: apperr.CodeUnavailable, Class: apperr.Config, Op: "store.Accept", Message: "refused"}
	}
	return o.Store.Accept(ctx, id, owner, hold, out)
}

// TestInDoubt: a call that timed out may have reached Skycore. It is not
// sent again inside SEND_INDOUBT_WINDOW; after it (no postback came) it is;
// with the window at 0 it is sent again at once.
func TestInDoubt(t *testing.T) {
	// It waits on leases and windows: overlap it with the others.
	t.Parallel()
	hang := func(c *sim.Config) {
		c.Faults = []sim.Fault{{Kind: "hang", Count: 1, Match: sim.Match{ToSuffix: "9144"}}}
	}
	body := `{"id":"doubt-1","to":"17743199144","mmsId":1000}`
	tests := map[string]struct {
		window    time.Duration
		wantCalls int // after the immediate redelivery
	}{
		"window on: not resent inside it": {window: 1500 * time.Millisecond, wantCalls: 1},
		"window 0: resent at once":        {window: 0, wantCalls: 2},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			hs := newHarness(t, hang, func(c *Config) { c.InDoubtWindow, c.CallTimeout = tt.window, 300*time.Millisecond })
			hs.mustInvoke(t, context.Background(), record(t, "m", body, time.Now()), 1)
			resp, _ := hs.invoke(t, context.Background(), record(t, "m", body, time.Now()))
			if n := hs.sim.Counts().Received["doubt-1"]; n != tt.wantCalls {
				t.Fatalf("calls = %d, want %d (resp %+v)", n, tt.wantCalls, resp)
			}
			if tt.window == 0 {
				return
			}
			time.Sleep(tt.window)
			hs.mustInvoke(t, context.Background(), record(t, "m", body, time.Now()), 0)
			if n := hs.sim.Counts().Received["doubt-1"]; n != 2 {
				t.Errorf("calls after the window = %d, want 2", n)
			}
			if got := hs.kinds(t); !slices.Equal(got, []string{"doubt-1:accepted:", "doubt-1:retrying:TIMEOUT"}) {
				t.Errorf("events = %v", got)
			}
		})
	}
}

// TestCallTimeoutIsOnlyACap: SKYCORE_TIMEOUT longer than the time left
// still calls (28 s with a 30 s function failed every record).
func TestCallTimeoutIsOnlyACap(t *testing.T) {
	hs := newHarness(t, nil, func(c *Config) { c.CallTimeout = 28 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	hs.mustInvoke(t, ctx, record(t, "m", `{"id":"cap-1","to":"17743199144","mmsId":1000}`, time.Now()), 0)
	if got := hs.kinds(t); !slices.Equal(got, []string{"cap-1:accepted:"}) {
		t.Errorf("events = %v", got)
	}
}

// TestVendorOutcomes: the vendor codes' classes (docs/codes.md).
func TestVendorOutcomes(t *testing.T) {
	hs := newHarness(t, nil, nil)
	tests := []struct{ body, want string }{
		{`{"id":"e111","to":"17743199144","from":"12345","mmsId":1000}`, "e111:rejected:E111"},
		{`{"id":"lead0","to":"17743199144","mmsId":"01000"}`, "lead0:accepted:"},
		{`{"id":"e108","to":"17743199144","mmsId":1000,"vcard":{"firstName":"A","emails":[{"id":"a\u0001@b.example"}]}}`, "e108:rejected:E108"},
	}
	for i, tt := range tests {
		hs.mustInvoke(t, context.Background(), record(t, fmt.Sprint("v", i), tt.body, time.Now()), 0)
	}
	got := hs.kinds(t)
	for _, tt := range tests {
		if !slices.Contains(got, tt.want) {
			t.Errorf("events %v lack %s", got, tt.want)
		}
	}
	if n := hs.sim.Counts().Received["e111"]; n != 1 {
		t.Errorf("E111 sent %d times, want once (permanent)", n)
	}
	t.Run("Success without TRACKINGID: accepted, never resent", func(t *testing.T) {
		calls := 0
		hs.h.d.Skycore = apiFunc(func(context.Context, string, *sendreq.Request) (*skycore.Response, error) {
			calls++
			return &skycore.Response{Status: skycore.StatusSuccess}, nil
		})
		ev := record(t, "nt", `{"id":"nt-1","to":"17743199144","mmsId":1000}`, time.Now())
		hs.mustInvoke(t, context.Background(), ev, 0)
		hs.mustInvoke(t, context.Background(), ev, 0)
		if got := hs.kinds(t); !slices.Equal(got, []string{"nt-1:accepted:NO_TRACKINGID"}) || calls != 1 {
			t.Errorf("events = %v, calls = %d", got, calls)
		}
	})
}

// apiFunc is a Skycore client made of one function.
type apiFunc func(ctx context.Context, apiKey string, r *sendreq.Request) (*skycore.Response, error)

func (f apiFunc) SendSavedMMS(ctx context.Context, apiKey string, r *sendreq.Request) (*skycore.Response, error) {
	return f(ctx, apiKey, r)
}

var _ api = apiFunc(nil)

// TestInDoubtPastTheWindow: a request whose calls keep timing out waits in
// doubt, and once SEND_RETRY_WINDOW is spent it ends expired instead of
// looping through doubt windows until the queue's backstop drops it.
func TestInDoubtPastTheWindow(t *testing.T) {
	// It waits on leases and windows: overlap it with the others.
	t.Parallel()
	hang := func(c *sim.Config) { c.Faults = []sim.Fault{{Kind: "hang", Match: sim.Match{ToSuffix: "9144"}}} }
	hs := newHarness(t, hang, func(c *Config) {
		c.InDoubtWindow, c.CallTimeout, c.RetryWindow = 300*time.Millisecond, 300*time.Millisecond, time.Hour
	})
	body := `{"id":"doubt-2","to":"17743199144","mmsId":1000}`
	sent := time.Now().Add(-time.Hour + 2*time.Second)
	hs.mustInvoke(t, context.Background(), record(t, "m", body, sent), 1)
	time.Sleep(2500 * time.Millisecond) // the doubt window and the retry window pass
	hs.mustInvoke(t, context.Background(), record(t, "m", body, sent), 0)
	if n := hs.sim.Counts().Received["doubt-2"]; n != 1 {
		t.Errorf("calls = %d, want 1", n)
	}
	if got := hs.kinds(t); !slices.Equal(got, []string{"doubt-2:expired:TIMEOUT", "doubt-2:retrying:TIMEOUT"}) {
		t.Errorf("events = %v", got)
	}
}

// TestSuppression: a number Skycore refused for good (E110) is rejected
// locally, with the original code and suppressed, and no Skycore call;
// lifting it restores sending. E715 suppresses per campaign only.
func TestSuppression(t *testing.T) {
	hs := newHarness(t, nil, func(c *Config) { c.SuppressCodes, c.SuppressTTL = []string{"E110", "E715"}, time.Hour })
	calls := map[string]int{}
	hs.h.d.Skycore = apiFunc(func(_ context.Context, _ string, r *sendreq.Request) (*skycore.Response, error) {
		calls[r.ID]++
		switch {
		case r.To == "17745550110":
			return nil, &apperr.Error{Code: "E110", Class: apperr.Permanent, Op: "skycore.SendSavedMMS", Message: "Invalid receiver number."}
		case r.To == "17745550715" && r.CampaignRef == "c1":
			return nil, &apperr.Error{Code: "E715", Class: apperr.Permanent, Op: "skycore.SendSavedMMS", Message: "opted out of campaign"}
		}
		return &skycore.Response{Status: skycore.StatusSuccess, TrackingID: "T-" + r.ID}, nil
	})
	send := func(id, to, campaign string) {
		t.Helper()
		body := fmt.Sprintf(`{"id":%q,"to":%q,"mmsId":1000,"campaignRef":%q}`, id, to, campaign)
		hs.mustInvoke(t, context.Background(), record(t, id, body, time.Now()), 0)
	}
	send("s1", "17745550110", "c1")
	send("s2", "17745550110", "c2") // suppressed: no call
	send("s3", "17745550715", "c1")
	send("s4", "17745550715", "c2") // another campaign: sent
	send("s5", "17745550715", "c1") // same campaign: suppressed
	evs, _ := hs.env.DrainEvents()
	got := map[string]string{}
	for _, e := range evs {
		got[e.ID] = fmt.Sprintf("%s:%s:%v", e.Event, e.Code, e.Suppressed)
	}
	want := map[string]string{"s1": "rejected:E110:false", "s2": "rejected:E110:true", "s3": "rejected:E715:false",
		"s4": "accepted::false", "s5": "rejected:E715:true"}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %q, want %q", id, got[id], w)
		}
	}
	if calls["s2"] != 0 || calls["s5"] != 0 || calls["s4"] != 1 {
		t.Errorf("Skycore calls = %v; suppressed requests must not call", calls)
	}
	st := store.New(hs.db, localenv.Table, 0)
	if lifted, err := st.Lift(context.Background(), store.SuppressionKey("17745550110", "")); !lifted || err != nil {
		t.Fatalf("Lift = %v, %v", lifted, err)
	}
	send("s6", "17745550110", "")
	if calls["s6"] != 1 {
		t.Errorf("after lifting, Skycore calls for s6 = %d, want 1", calls["s6"])
	}
}

// flakyAccept is the real store whose acceptance writes fail transiently
// while down is set (DynamoDB refusing them for longer than an invocation).
type flakyAccept struct {
	*store.Store
	mu   sync.Mutex
	down bool
}

func (f *flakyAccept) Accept(ctx context.Context, id, owner string, hold time.Time, o store.Outcome) (bool, *store.Message, error) {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		return false, nil, &apperr.Error{Code: apperr.CodeUnavailable, Class: apperr.Retry, Op: "store.Accept", Message: "throttled"}
	}
	return f.Store.Accept(ctx, id, owner, hold, o)
}

func (f *flakyAccept) set(down bool) { f.mu.Lock(); f.down = down; f.mu.Unlock() }

// TestHandoffWithDuplicatesInFlight is TestAcceptedButUnrecordedNeverResent
// with the refusal injected in front of the store instead of the fault
// proxy, so that it runs under -short too (memdb, no Node).
func TestHandoffWithDuplicatesInFlight(t *testing.T) {
	// It waits on leases and windows: overlap it with the others.
	t.Parallel()
	hs := newHarness(t, nil, func(c *Config) { c.InDoubtWindow = 10 * time.Minute })
	flaky := &flakyAccept{Store: store.New(hs.db, localenv.Table, 0), down: true}
	hs.h.d.Store = flaky
	body := `{"id":"book-3","to":"17743199144","mmsId":1000}`
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	hs.mustInvoke(t, ctx, record(t, "orig", body, time.Now()), 0)
	handoffs := hs.drain(t, localenv.SendQueue)
	if len(handoffs) != 1 {
		t.Fatalf("send queue = %+v, want the signed hand-off", handoffs)
	}
	dl, _ := ctx.Deadline()
	time.Sleep(time.Until(dl) + 50*time.Millisecond)
	// Duplicates while the store still refuses: in doubt, never sent again.
	hs.mustInvoke(t, context.Background(), record(t, "dup", body, time.Now()), 1)
	hs.mustInvoke(t, context.Background(), fromQueue(t, handoffs[0]), 1) // the hand-off cannot be recorded yet
	flaky.set(false)
	hs.mustInvoke(t, context.Background(), fromQueue(t, handoffs[0]), 0)
	hs.mustInvoke(t, context.Background(), record(t, "dup", body, time.Now()), 0)
	if n := hs.sim.Counts().Received["book-3"]; n != 1 {
		t.Errorf("sent %d times, want 1", n)
	}
	if got := hs.kinds(t); !slices.Equal(got, []string{"book-3:accepted:"}) {
		t.Errorf("events = %v, want one accepted", got)
	}
}

// A long in-doubt window hides the message as long as SQS allows: 12 hours
// in all from its receive, less the batching window and the function's
// run (SQS refuses the whole change beyond that, and the message would
// then come back every visibility timeout for half a day).
func TestInDoubtLongWindowVisibility(t *testing.T) {
	hang := func(c *sim.Config) {
		c.Faults = []sim.Fault{{Kind: "hang", Count: 1, Match: sim.Match{ToSuffix: "9144"}}}
	}
	hs := newHarness(t, hang, func(c *Config) { c.InDoubtWindow, c.CallTimeout = 24*time.Hour, 300*time.Millisecond })
	hs.enqueue(t, `{"id":"doubt-24h","to":"17743199144","mmsId":1000}`)
	msgs := hs.receive(t, 1, 30*time.Second)
	if len(msgs) != 1 {
		t.Fatalf("receive = %v", msgs)
	}
	ev := record(t, aws.ToString(msgs[0].MessageId), aws.ToString(msgs[0].Body), time.Now())
	ev.Records[0].ReceiptHandle = aws.ToString(msgs[0].ReceiptHandle)
	hs.mustInvoke(t, context.Background(), ev, 1)
	if strings.Contains(hs.logs.String(), "cannot set the retry back-off") {
		t.Errorf("the visibility change was refused:\n%s", hs.logs)
	}
	// SQS took the change (the proxy records only 2xx answers) and holds
	// the message hidden.
	if wait, ok := hs.hiddenFor(t, msgs[0].ReceiptHandle); !ok || wait < 11*time.Hour || wait > 12*time.Hour {
		t.Errorf("hidden for %v (set: %v); want as long as SQS allows (between 11 and 12 h)", wait, ok)
	}
	if hs.held(t, localenv.SendQueue) != 1 {
		t.Error("the message is not hidden on the send queue")
	}
}
