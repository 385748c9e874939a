package sender

// Adversarial review: attacks on the sender's promises (docs/request.md, docs/events.md).
// Each test asserts a promise; a test marked "FINDING" fails on the code
// as reviewed and is skipped so the suite stays green.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/postback"
	"github.com/mmsgate/mmsgate/pkg/secret"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// orderLog is every event that reached the queue, in the order the
// Publish calls returned; several publishers may share one.
type orderLog struct {
	mu  sync.Mutex
	evs []delivery.Event
}

func (l *orderLog) of(id string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.evs {
		if e.ID == id {
			out = append(out, e.Event)
		}
	}
	return out
}

// attackLog forwards each event to the real publisher and records it in
// its orderLog once published.
type attackLog struct {
	inner publisher
	*orderLog
}

func newAttackLog(inner publisher) *attackLog { return &attackLog{inner: inner, orderLog: &orderLog{}} }

func (p *attackLog) Publish(ctx context.Context, e delivery.Event) error {
	if err := p.inner.Publish(ctx, e); err != nil {
		return err
	}
	p.mu.Lock()
	p.evs = append(p.evs, e)
	p.mu.Unlock()
	return nil
}

func terminalCount(evs []string) int {
	n := 0
	for _, e := range evs {
		if e == delivery.Accepted || e == delivery.Rejected || e == delivery.Expired {
			n++
		}
	}
	return n
}

// assertOneTerminalLast: exactly one terminal send event, and no send
// event (retrying) after it.
func assertOneTerminalLast(t *testing.T, evs []string) {
	t.Helper()
	if terminalCount(evs) != 1 {
		t.Errorf("events %v: want exactly one terminal send event", evs)
	}
	seen := false
	for _, e := range evs {
		switch e {
		case delivery.Accepted, delivery.Rejected, delivery.Expired:
			seen = true
		case delivery.Retrying:
			if seen {
				t.Errorf("events %v: retrying after the terminal event", evs)
			}
		}
	}
}

// TestAttackCaseFoldedIDForgesRejected: a body whose id key is spelled
// "ID" has no usable "id" (Decode is exact), but PeekID reads it through
// encoding/json's case-insensitive struct matching, so a rejected event
// is published for another request's id with no claim: that id ends with
// two terminal events (accepted, then rejected).
func TestAttackCaseFoldedIDForgesRejected(t *testing.T) {
	hs := newHarness(t, nil, nil)
	log := newAttackLog(hs.h.d.Events)
	hs.h.d.Events = log
	hs.mustInvoke(t, context.Background(), record(t, "m1", `{"id":"victim-1","to":"17743199144","mmsId":1000}`, time.Now()), 0)
	hs.mustInvoke(t, context.Background(), record(t, "m2", `{"ID":"victim-1","to":"17743199144","mmsId":1000}`, time.Now()), 0)
	hs.mustInvoke(t, context.Background(), record(t, "m3", `{"iD":"victim-2","to":"17743199144","mmsId":1000}`, time.Now()), 0)
	hs.mustInvoke(t, context.Background(), record(t, "m4", `{"id":"victim-2","to":"17743199144","mmsId":1000}`, time.Now()), 0)
	for _, id := range []string{"victim-1", "victim-2"} {
		if got := log.of(id); terminalCount(got) != 1 {
			t.Errorf("%s: events %v, want exactly one terminal event", id, got)
		}
	}
}

// dlqOutage fails SendMessage to the DLQ n times.
type dlqOutage struct {
	queue
	dlq  string
	left atomic.Int32
}

func (q *dlqOutage) SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if aws.ToString(in.QueueUrl) == q.dlq && q.left.Add(-1) >= 0 {
		return nil, &apperr.Error{Code: apperr.CodeUnavailable, Class: apperr.Retry, Message: "DLQ down"}
	}
	return q.queue.SendMessage(ctx, in, opts...)
}

// TestAttackExpiredBodyReachesDLQAfterOutage: a request expires (retry
// window spent) while the DLQ is briefly down. The contract moves an
// expired body to the DLQ; the redelivery finds the id final and deletes
// the message, so the body must still land in the DLQ.
func TestAttackExpiredBodyReachesDLQAfterOutage(t *testing.T) {
	hs := newHarness(t, nil, func(c *Config) { c.RetryWindow = time.Hour })
	q := &dlqOutage{queue: hs.h.d.Queue, dlq: hs.env.DLQURL}
	q.left.Store(1)
	hs.h.d.Queue = q
	body := `{"id":"exp-dlq","to":"17745550503","mmsId":1000}`
	ev := record(t, "m", body, time.Now().Add(-2*time.Hour))
	resp, _ := hs.invoke(t, context.Background(), ev) // expired, DLQ down
	if len(resp.BatchItemFailures) != 1 {
		t.Fatalf("first delivery: %+v, want the record kept for redelivery", resp)
	}
	hs.mustInvoke(t, context.Background(), ev, 0) // redelivery: DLQ is back
	if got := hs.kinds(t); len(got) != 1 || got[0] != "exp-dlq:expired:E503" {
		t.Errorf("events = %v", got)
	}
	if dlq := hs.peek(t, localenv.SendDLQ); len(dlq) != 1 || aws.ToString(dlq[0].Body) != body {
		t.Errorf("DLQ = %+v; want the expired body once", dlq)
	}
}

// crashAt is the real store, except that one chosen call "crashes" the
// record's goroutine (runtime.Goexit: nothing after it runs) the first
// time it is made.
type crashAt struct {
	*store.Store
	at      string
	crashed atomic.Bool
}

func (c *crashAt) crash(name string) {
	if c.at == name && c.crashed.CompareAndSwap(false, true) {
		runtime.Goexit()
	}
}

func (c *crashAt) Link(ctx context.Context, trackingID, id string, md map[string]string) error {
	c.crash("Link")
	return c.Store.Link(ctx, trackingID, id, md)
}

func (c *crashAt) EventSent(ctx context.Context, id string) error {
	c.crash("EventSent")
	return c.Store.EventSent(ctx, id)
}

func (c *crashAt) Accept(ctx context.Context, id, owner string, hold time.Time, o store.Outcome) (bool, *store.Message, error) {
	won, m, err := c.Store.Accept(ctx, id, owner, hold, o)
	c.crash("after Accept")
	return won, m, err
}

// TestAttackCrashBetweenAcceptAndLink: the sender dies right after
// recording the acceptance (before linking the tracking id). The
// redelivery publishes the pending accepted event; the tracking id must be
// linked by then, or every postback without CLIENT_REFERENCE (not
// documented for v1) goes out with "id": "" after the join window.
func TestAttackCrashBetweenAcceptAndLink(t *testing.T) {
	// It waits on leases and windows: overlap it with the others.
	t.Parallel()
	for _, at := range []string{"after Accept", "Link"} {
		t.Run(at, func(t *testing.T) {
			hs := newHarness(t, nil, nil)
			st := &crashAt{Store: store.New(hs.db, localenv.Table, 0), at: at}
			hs.h.d.Store = st
			body := `{"id":"crash-link","to":"17743199144","mmsId":1000}`
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			hs.invoke(t, ctx, record(t, "m", body, time.Now()))
			if !st.crashed.Load() {
				t.Fatal("no crash")
			}
			dl, _ := ctx.Deadline()
			time.Sleep(time.Until(dl) + 50*time.Millisecond) // the dead sender's hold is over
			hs.mustInvoke(t, context.Background(), record(t, "m", body, time.Now()), 0)
			if got := hs.kinds(t); len(got) != 1 || got[0] != "crash-link:accepted:" {
				t.Fatalf("events = %v", got)
			}
			trk := hs.sim.Requests()[0].TrackingID
			tr, err := st.GetTracking(context.Background(), trk)
			if err != nil || tr == nil || tr.ID != "crash-link" {
				t.Errorf("tracking %s = %+v, %v; want it linked to crash-link", trk, tr, err)
			}
		})
	}
}

// TestAttackCrashAfterPublishBeforeEventSent: the sender dies after
// publishing the accepted event but before clearing it. Redeliveries of
// the same message (and of a second copy) must not call Skycore again;
// the event may go out at most twice (at least once), never a different
// terminal event.
func TestAttackCrashAfterPublishBeforeEventSent(t *testing.T) {
	// It waits on leases and windows: overlap it with the others.
	t.Parallel()
	hs := newHarness(t, nil, nil)
	log := newAttackLog(hs.h.d.Events)
	hs.h.d.Events = log
	st := &crashAt{Store: store.New(hs.db, localenv.Table, 0), at: "EventSent"}
	hs.h.d.Store = st
	body := `{"id":"crash-sent","to":"17743199144","mmsId":1000}`
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	hs.invoke(t, ctx, record(t, "m", body, time.Now()))
	dl, _ := ctx.Deadline()
	time.Sleep(time.Until(dl) + 50*time.Millisecond)
	hs.mustInvoke(t, context.Background(), record(t, "m", body, time.Now()), 0)
	hs.mustInvoke(t, context.Background(), record(t, "m2", body, time.Now()), 0)
	if n := hs.sim.Counts().Received["crash-sent"]; n != 1 {
		t.Errorf("sent %d times", n)
	}
	for _, e := range log.of("crash-sent") {
		if e != delivery.Accepted {
			t.Errorf("events %v", log.of("crash-sent"))
		}
	}
	m, _ := st.Get(context.Background(), "crash-sent")
	if m == nil || m.PendingEvent != "" {
		t.Errorf("record %+v: the pending event must be cleared by the redelivery", m)
	}
}

// TestAttackManyCopiesInFlight: eight copies of one id (distinct SQS
// messages) delivered at once in separate invocations and inside one
// batch: Skycore is called once, one accepted event.
func TestAttackManyCopiesInFlight(t *testing.T) {
	hs := newHarness(t, nil, nil)
	log := newAttackLog(hs.h.d.Events)
	hs.h.d.Events = log
	body := `{"id":"copies","to":"17743199144","mmsId":1000}`
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			ev := record(t, fmt.Sprint("c", i), body, time.Now())
			r2 := record(t, fmt.Sprint("d", i), body, time.Now()).Records[0]
			ev.Records = append(ev.Records, r2)
			hs.invoke(t, context.Background(), ev)
		})
	}
	wg.Wait()
	// Whatever was left for later comes back once the winner is done.
	for i := range 4 {
		hs.mustInvoke(t, context.Background(), record(t, fmt.Sprint("c", i), body, time.Now()), 0)
	}
	if n := hs.sim.Counts().Received["copies"]; n != 1 {
		t.Errorf("Skycore called %d times", n)
	}
	if got := log.of("copies"); len(got) != 1 || got[0] != delivery.Accepted {
		t.Errorf("events %v, want one accepted", got)
	}
}

// racing is the real store; after the chosen give-back write succeeds it
// runs hook (a postback arriving right then).
type racing struct {
	*store.Store
	hook func()
	once sync.Once
}

func (r *racing) Doubt(ctx context.Context, id, owner string, until time.Time, o store.Outcome) (bool, error) {
	ok, err := r.Store.Doubt(ctx, id, owner, until, o)
	r.once.Do(r.hook)
	return ok, err
}

func (r *racing) Release(ctx context.Context, id, owner string, o store.Outcome) (bool, error) {
	ok, err := r.Store.Release(ctx, id, owner, o)
	r.once.Do(r.hook)
	return ok, err
}

// postbackTo returns a function that delivers one postback to the real
// postback handler on the same table and events queue.
func postbackTo(t *testing.T, hs *harness, pub publisher) func(code, trk, ref string) int {
	tokens := secret.New(hs.env.SecretsManager(), localenv.SecretID, time.Minute, secret.PostbackToken)
	v, err := tokens.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ph := postback.NewHandler(postback.Deps{Tokens: tokens, Store: store.New(hs.db, localenv.Table, 0), Events: pub})
	return func(code, trk, ref string) int {
		body := fmt.Sprintf(`<POSTBACK><ORIGIN>MMS_MT</ORIGIN><CODE>%s</CODE><STATUS>x</STATUS><TRACKINGID>%s</TRACKINGID>`+
			`<CLIENT_REFERENCE>%s</CLIENT_REFERENCE><TIMESTAMP>2026-01-01T00:00:00Z</TIMESTAMP></POSTBACK>`, code, trk, ref)
		req := events.APIGatewayV2HTTPRequest{Body: body, PathParameters: map[string]string{"token": v.PostbackToken}}
		req.RequestContext.HTTP.Method = "POST"
		req.RequestContext.RequestID = fmt.Sprint("pb-", time.Now().UnixNano())
		resp, _ := ph.Handle(context.Background(), req)
		return resp.StatusCode
	}
}

// TestAttackPostbackRacesGiveBack: the call times out (in doubt), but
// Skycore did take it and its postback (with CLIENT_REFERENCE) arrives
// right after the sender gave the id back (INDOUBT or RETRY). The
// sender publishes retrying before it gives the id back, while its claim
// still holds off the postback, so the postback's accepted and sent come
// after it (retrying is never the last word; no event out of order).
func TestAttackPostbackRacesGiveBack(t *testing.T) {
	for _, mode := range []string{"doubt", "release"} {
		t.Run(mode, func(t *testing.T) {
			hs := newHarness(t, nil, func(c *Config) { c.InDoubtWindow = time.Minute })
			log := newAttackLog(hs.h.d.Events)
			hs.h.d.Events = log
			deliver := postbackTo(t, hs, log)
			code := apperr.CodeTimeout
			if mode == "release" {
				code = "E503" // surely failed; the postback is of an earlier, in-doubt call
			}
			hs.h.d.Skycore = apiFunc(func(context.Context, string, *sendreq.Request) (*skycore.Response, error) {
				return nil, &apperr.Error{Code: code, Class: apperr.Retry, Op: "skycore.SendSavedMMS", Message: "no answer"}
			})
			var status int
			hs.h.d.Store = &racing{Store: store.New(hs.db, localenv.Table, 0), hook: func() {
				status = deliver("N101", "TRK-RACE-"+mode, "race-"+mode)
			}}
			hs.invoke(t, context.Background(), record(t, "m", fmt.Sprintf(`{"id":"race-%s","to":"17743199144","mmsId":1000}`, mode), time.Now()))
			if status != 200 {
				t.Fatalf("postback answered %d", status)
			}
			got := log.of("race-" + mode)
			assertOneTerminalLast(t, got)
			if len(got) == 0 || got[len(got)-1] == delivery.Retrying {
				t.Errorf("events %v: retrying is the last word", got)
			}
		})
	}
}

// TestAttackPostbackDuringCall: the postback of an earlier in-doubt call
// lands while a later claim's call is out; that call then fails (timeout,
// permanent, transient) or succeeds. The postback cannot record the
// acceptance under a live claim (503, Skycore retries); its retry after
// the call does. One terminal event, retrying never after it and never
// last; the postback's own event after the accepted one.
func TestAttackPostbackDuringCall(t *testing.T) {
	// It waits on leases and windows: overlap it with the others.
	t.Parallel()
	want := map[string]string{
		"timeout":   "retrying,accepted,delivered",
		"transient": "retrying,accepted,delivered",
		"success":   "accepted,delivered",
		// Skycore took the earlier call, then refused this one: the
		// receipt still reaches the application (documented, counted as
		// LateReceipt), after the terminal event.
		"permanent": "rejected,delivered",
	}
	outcomes := map[string]func() (*skycore.Response, error){
		"timeout": func() (*skycore.Response, error) {
			return nil, &apperr.Error{Code: apperr.CodeTimeout, Class: apperr.Retry, Op: "skycore.SendSavedMMS", Message: "t"}
		},
		"transient": func() (*skycore.Response, error) {
			return nil, &apperr.Error{Code: "E503", Class: apperr.Retry, Op: "skycore.SendSavedMMS", Message: "busy"}
		},
		"permanent": func() (*skycore.Response, error) {
			return nil, &apperr.Error{Code: "E110", Class: apperr.Permanent, Op: "skycore.SendSavedMMS", Message: "bad number"}
		},
		"success": func() (*skycore.Response, error) {
			return &skycore.Response{Status: skycore.StatusSuccess, TrackingID: "TRK-SECOND"}, nil
		},
	}
	for name, out := range outcomes {
		t.Run(name, func(t *testing.T) {
			hs := newHarness(t, nil, func(c *Config) { c.InDoubtWindow = time.Minute })
			log := newAttackLog(hs.h.d.Events)
			hs.h.d.Events = log
			deliver := postbackTo(t, hs, log)
			id := "during-" + name
			var status int
			hs.h.d.Skycore = apiFunc(func(context.Context, string, *sendreq.Request) (*skycore.Response, error) {
				status = deliver("N102", "TRK-FIRST-"+name, id)
				return out()
			})
			hs.invoke(t, context.Background(), record(t, "m", fmt.Sprintf(`{"id":%q,"to":"17743199144","mmsId":1000}`, id), time.Now()))
			if status != 503 {
				t.Fatalf("postback during a live claim answered %d, want 503 (retried)", status)
			}
			if status = deliver("N102", "TRK-FIRST-"+name, id); status != 200 { // Skycore's retry
				t.Fatalf("postback retry answered %d", status)
			}
			hs.invoke(t, context.Background(), record(t, "m", fmt.Sprintf(`{"id":%q,"to":"17743199144","mmsId":1000}`, id), time.Now()))
			got := log.of(id)
			if strings.Join(got, ",") != want[name] {
				t.Errorf("events %v, want %s", got, want[name])
			}
		})
	}
}

// TestAttackSecretEchoedInVendorAnswers: Skycore's answers that echo the
// API key (in ERRORINFO, in an HTML error page, split over the 120-byte
// cut, XML-escaped) reach no event and no log line, not even 6 characters
// of it, nor the hand-off signing key.
func TestAttackSecretEchoedInVendorAnswers(t *testing.T) {
	// It waits on leases and windows: overlap it with the others.
	t.Parallel()
	const key = "Zq7Wv3Np8Lx2Rt6Yb4Kd9Hm5" // 24 characters
	pages := []string{
		`<RESPONSE><STATUS>Failure</STATUS><ERRORCODE>E110</ERRORCODE><ERRORINFO>key ` + key + ` is bad</ERRORINFO></RESPONSE>`,
		`<RESPONSE><STATUS>Failure</STATUS><ERRORCODE>E503</ERRORCODE><ERRORINFO>` + strings.Repeat("x", 110) + key + `</ERRORINFO></RESPONSE>`,
		`<RESPONSE><STATUS>Failure</STATUS><ERRORCODE>E104</ERRORCODE><ERRORINFO>Invalid API_KEY ` + key + `</ERRORINFO></RESPONSE>`,
		`<html><body>` + strings.Repeat("y", 100) + key + `</body></html>`,
		`<RESPONSE><STATUS>` + key + `</STATUS></RESPONSE>`,
	}
	for i, page := range pages {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			hs := newHarness(t, nil, nil)
			hs.env.PutSecret(key, "tok")
			hk := fmt.Sprintf("%x", handoffKey(key))
			srv := newEchoServer(t, page)
			hs.h.d.Skycore = skycore.New(srv, skycore.WithTimeout(time.Second))
			log := newAttackLog(hs.h.d.Events)
			hs.h.d.Events = log
			hs.invoke(t, context.Background(), record(t, "m", fmt.Sprintf(`{"id":"leak-%d","to":"17743199144","mmsId":1000}`, i), time.Now()))
			var texts []string
			texts = append(texts, hs.logs.String())
			for _, e := range log.evs {
				texts = append(texts, fmt.Sprintf("%+v", e))
			}
			if len(log.evs) == 0 {
				t.Fatal("no event")
			}
			for _, s := range texts {
				for n := 6; n <= len(key); n++ {
					for j := 0; j+n <= len(key); j++ {
						if strings.Contains(s, key[j:j+n]) {
							t.Fatalf("%d characters of the key leak: %q in %.300s", n, key[j:j+n], s)
						}
					}
				}
				if strings.Contains(s, hk[:16]) {
					t.Fatal("the hand-off key leaks")
				}
			}
		})
	}
}

// newEchoServer answers every call with page (HTTP 200 for a RESPONSE,
// 502 for anything else) and returns its URL.
func newEchoServer(t *testing.T, page string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(page, "<RESPONSE>") {
			w.WriteHeader(http.StatusBadGateway)
		}
		w.Write([]byte(page))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// lostClaimAnswer is DynamoDB losing the answer to every claim it applies:
// the SDK retries a closed connection by default, and the retry meets the
// claim's own condition.
type lostClaimAnswer struct {
	dynamoAPI
	lost atomic.Int32
}

func (l *lostClaimAnswer) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	out, err := l.dynamoAPI.UpdateItem(ctx, in, opts...)
	if err != nil || !strings.HasPrefix(aws.ToString(in.ConditionExpression), "attribute_not_exists(#pk)") {
		return out, err
	}
	l.lost.Add(1)
	return l.dynamoAPI.UpdateItem(ctx, in, opts...)
}

// TestAttackClaimAnswerLost: a claim applied but answered by the SDK's
// retry as taken is still this invocation's: the request is sent now,
// once, not left for our lease and the doubt window. The same message
// twice in one batch (the two copies share the claim's owner) is still
// sent once.
func TestAttackClaimAnswerLost(t *testing.T) {
	for name, copies := range map[string]int{"one copy": 1, "two copies in one batch": 2} {
		t.Run(name, func(t *testing.T) {
			hs := newHarness(t, nil, func(c *Config) { c.InDoubtWindow = 10 * time.Minute })
			db := &lostClaimAnswer{dynamoAPI: hs.db}
			hs.h.d.Store = store.New(db, localenv.Table, 0)
			ev := record(t, "m-lost", `{"id":"lost-claim-1","to":"17743199144","mmsId":1000}`, time.Now())
			for range copies - 1 {
				ev.Records = append(ev.Records, ev.Records[0])
			}
			hs.mustInvoke(t, context.Background(), ev, 0)
			if db.lost.Load() == 0 {
				t.Fatal("no claim answer was lost: the attack did not run")
			}
			if n := hs.sim.Counts().Received["lost-claim-1"]; n != 1 {
				t.Errorf("sent %d times, want 1", n)
			}
			if got := hs.kinds(t); len(got) != 1 || got[0] != "lost-claim-1:accepted:" {
				t.Errorf("events = %v, want one accepted", got)
			}
		})
	}
}
