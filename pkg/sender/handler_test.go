package sender

import (
	"context"
	"encoding/json"
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
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/memdb"
	"github.com/mmsgate/mmsgate/internal/sim"
	"github.com/mmsgate/mmsgate/pkg/applog"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/emf"
	"github.com/mmsgate/mmsgate/pkg/outbox"
	"github.com/mmsgate/mmsgate/pkg/secret"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// harness is the real handler with real SDK clients against moto (SQS and
// Secrets Manager, behind fault proxies) and the simulator, and the real
// store on dynalite; under -short, against fakesqs, fakesecrets and
// internal/memdb (no Python, no Node needed).
type harness struct {
	env  *localenv.Env
	db   dynamoAPI
	sim  *sim.Server
	h    *Handler
	keys *secret.Cache
	logs *localenv.Logs
	box  *outbox.Outbox
}

func newHarness(t *testing.T, simCfg func(*sim.Config), cfg func(*Config)) *harness {
	t.Helper()
	ctx := context.Background()
	env, err := localenv.Start(ctx, localenv.Options{NoDynamo: testing.Short(), InProcess: testing.Short(), Servers: &servers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	var db dynamoAPI = env.DynamoDB()
	if testing.Short() {
		mem := memdb.New()
		if err := store.CreateTable(ctx, mem, localenv.Table); err != nil {
			t.Fatal(err)
		}
		db = mem
	}
	sc := sim.Default()
	sc.Faults = []sim.Fault{{Kind: "E503", Match: sim.Match{ToSuffix: "0503"}}}
	if simCfg != nil {
		simCfg(&sc)
	}
	s, err := sim.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := Config{Policy: sendreq.Policy{DefaultFrom: "60856"}, Concurrency: 4, CallTimeout: 2 * time.Second,
		SendQueueURL: env.SendQueueURL, DLQURL: env.DLQURL, Margin: 500 * time.Millisecond}
	if cfg != nil {
		cfg(&c)
	}
	logs := &localenv.Logs{}
	keys := secret.New(env.SecretsManager(func(o *secretsmanager.Options) { o.RetryMaxAttempts = 1 }), localenv.SecretID, time.Minute)
	env.SQSFaults.Record("ChangeMessageVisibility") // hiddenFor
	q := env.SQSClient(func(o *sqs.Options) { o.AppID = handlerApp })
	box := outbox.New(q) // as functions/send-mms wires it
	h := NewHandler(c, Deps{
		Keys:    keys,
		Skycore: skycore.New(base+sim.APIPath, skycore.WithTimeout(c.CallTimeout)),
		Store:   store.New(db, localenv.Table, 0),
		Events:  delivery.NewPublisher(box, env.EventsQueueURL),
		Queue:   q,
		Outbox:  box,
		Log:     applog.New(logs),
		Metrics: emf.New(logs, "mmsgate", map[string]string{"Function": "send-mms"}),
	})
	return &harness{env: env, db: db, sim: s, h: h, keys: keys, logs: logs, box: box}
}

// dynamoAPI is what the store needs of DynamoDB.
type dynamoAPI interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

// needsProxy skips a test that throttles DynamoDB through the fault proxy
// in front of dynalite: it runs in the full suite, not under -short.
func (hs *harness) needsProxy(t *testing.T) {
	t.Helper()
	if hs.env.Proxy == nil {
		t.Skip("needs dynalite behind the fault proxy (not under -short)")
	}
}

// invoke runs an event through lambda.NewHandler, the real JSON path.
func (hs *harness) invoke(t *testing.T, ctx context.Context, ev any) (events.SQSEventResponse, error) {
	t.Helper()
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: fmt.Sprint("req-", time.Now().UnixNano())})
	out, err := lambda.NewHandler(hs.h.Handle).Invoke(ctx, payload)
	if err != nil {
		return events.SQSEventResponse{}, err
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	return resp, nil
}

func loadEvent(t *testing.T, name string) events.SQSEvent {
	t.Helper()
	var ev events.SQSEvent
	if err := localenv.ReadEvent("events/sqs/"+name+".json", &ev); err != nil {
		t.Fatal(err)
	}
	// The samples were captured long ago: as enqueued now, or every
	// transient failure would be past SEND_RETRY_WINDOW.
	for i := range ev.Records {
		ev.Records[i].Attributes["SentTimestamp"] = strconv.FormatInt(time.Now().UnixMilli(), 10)
	}
	return ev
}

// batchOf is an SQS batch of n valid requests, ids prefix-0 … prefix-(n-1).
func batchOf(t *testing.T, prefix string, n int) events.SQSEvent {
	ev := loadEvent(t, "contract-example")
	tmpl := ev.Records[0]
	ev.Records = nil
	for i := range n {
		r := tmpl
		r.MessageId = fmt.Sprintf("%s-m%d", prefix, i)
		r.Body = fmt.Sprintf(`{"id":"%s-%d","to":"17743199144","mmsId":1000}`, prefix, i)
		ev.Records = append(ev.Records, r)
	}
	return ev
}

func withBody(t *testing.T, body string) events.SQSEvent {
	ev := loadEvent(t, "contract-example")
	ev.Records[0].Body = body
	return ev
}

func failed(r events.SQSEventResponse) []string {
	var ids []string
	for _, f := range r.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	slices.Sort(ids)
	return ids
}

// kinds lists "id:event:code" of every published event, sorted.
func (hs *harness) kinds(t *testing.T) []string {
	t.Helper()
	evs, err := hs.env.DrainEvents()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.ID+":"+e.Event+":"+e.Code)
	}
	slices.Sort(out)
	return out
}

func TestMixedBatch(t *testing.T) {
	hs := newHarness(t, nil, nil)
	resp, err := hs.invoke(t, context.Background(), loadEvent(t, "batch-mixed"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"m-transient"}, failed(resp)); diff != "" {
		t.Errorf("batchItemFailures (-want +got):\n%s", diff)
	}
	want := []string{"mixed-accepted:accepted:", "mixed-rejected:rejected:E110", "mixed-transient:retrying:E503"}
	if diff := cmp.Diff(want, hs.kinds(t)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	dlq := hs.peek(t, localenv.SendDLQ)
	if len(dlq) != 1 || aws.ToString(dlq[0].Body) != "this is not JSON {" || errorAttr(dlq[0]) == "" {
		t.Errorf("DLQ = %+v, want the malformed body with an error attribute", dlq)
	}
	c := hs.sim.Counts()
	if c.Accepted["mixed-accepted"] != 1 || c.Received["mixed-rejected"] != 0 || c.Received["mixed-transient"] != 1 {
		t.Errorf("simulator counts = %+v", c)
	}
	// The rejection names every violated field.
	m, err := store.New(hs.db, localenv.Table, 0).Get(context.Background(), "mixed-rejected")
	if err != nil || m == nil || m.State != store.StateRejected || !strings.Contains(m.Error, "mmsId") || !strings.Contains(m.Error, "E110 to") {
		t.Errorf("rejected record = %+v, %v", m, err)
	}
}

func TestSampleFallbackAndFailures(t *testing.T) {
	hs := newHarness(t, nil, nil)
	resp, err := hs.invoke(t, context.Background(), loadEvent(t, "fallback-and-failures"))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("invoke = %+v, %v", resp, err)
	}
	want := []string{"carrier-expired:accepted:", "fallback-delivered:accepted:", "send-failed:accepted:",
		"template-missing:rejected:E241", "uk-number:accepted:"}
	if diff := cmp.Diff(want, hs.kinds(t)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	for _, r := range hs.sim.Requests() {
		if r.ClientReference == "uk-number" && r.From != "60060" {
			t.Errorf("UK number sent from %q, want the UK default short code", r.From)
		}
	}
}

func TestAcceptedEventAndRecord(t *testing.T) {
	hs := newHarness(t, func(c *sim.Config) {
		c.Accounts[0].Templates = append(c.Accounts[0].Templates, sim.Template{MMSID: 48211, Slides: 8})
	}, nil)
	if _, err := hs.invoke(t, context.Background(), loadEvent(t, "contract-example")); err != nil {
		t.Fatal(err)
	}
	evs, _ := hs.env.DrainEvents()
	if len(evs) != 1 {
		t.Fatalf("events = %+v", evs)
	}
	e := evs[0]
	reqs := hs.sim.Requests()
	if e.Event != "accepted" || e.ID != "order-8812-shipped" || e.TrackingID != reqs[0].TrackingID || e.To != "17743199144" ||
		e.From != "60856" || e.MMSID == nil || *e.MMSID != 48211 || e.RecordedAt == "" {
		t.Errorf("accepted event = %+v", e)
	}
	if _, err := time.Parse(delivery.TimeFormat, e.RecordedAt); err != nil || !strings.HasSuffix(e.RecordedAt, "Z") {
		t.Errorf("recordedAt %q: %v", e.RecordedAt, err)
	}
	m, _ := store.New(hs.db, localenv.Table, 0).Get(context.Background(), "order-8812-shipped")
	if m.State != store.StateAccepted || m.TrackingID != e.TrackingID || m.PendingEvent != "" {
		t.Errorf("record = %+v", m)
	}
	if len(reqs[0].Warnings) != 0 {
		t.Errorf("simulator warnings for the contract example: %v", reqs[0].Warnings)
	}
}

func TestDuplicateDelivery(t *testing.T) {
	hs := newHarness(t, nil, nil)
	ev := loadEvent(t, "duplicate-id")
	// Two records with one id in a batch: one is sent, the other waits.
	resp, err := hs.invoke(t, context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) > 1 {
		t.Errorf("failures = %v", resp.BatchItemFailures)
	}
	// Redelivered, both are duplicates: nothing is sent, nothing fails.
	resp, err = hs.invoke(t, context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("redelivery = %+v, %v", resp, err)
	}
	if n := hs.sim.Counts().Received["dup-1"]; n != 1 {
		t.Errorf("dup-1 reached Skycore %d times, want 1", n)
	}
	if got := hs.kinds(t); !slices.Equal(got, []string{"dup-1:accepted:"}) {
		t.Errorf("events = %v, want one accepted", got)
	}
	if !strings.Contains(hs.logs.String(), `"Duplicate":1`) {
		t.Errorf("no Duplicate metric in the logs")
	}
}

func TestConcurrentInvocationsSendOnce(t *testing.T) {
	hs := newHarness(t, func(c *sim.Config) { c.Latency = sim.Latency{Fixed: sim.Duration(200 * time.Millisecond)} }, nil)
	ev := withBody(t, `{"id":"twice","to":"17743199144","mmsId":1000}`)
	var wg sync.WaitGroup
	results := make([]events.SQSEventResponse, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := hs.invoke(t, context.Background(), ev)
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		}()
	}
	wg.Wait()
	if n := hs.sim.Counts().Received["twice"]; n != 1 {
		t.Fatalf("sent %d times, want 1", n)
	}
	if f := len(results[0].BatchItemFailures) + len(results[1].BatchItemFailures); f != 1 {
		t.Errorf("want exactly one invocation to leave the busy id for later, got %d failures", f)
	}
}

func TestKeyRotation(t *testing.T) {
	hs := newHarness(t, nil, nil)
	hs.env.PutSecret("old-key", "tok")
	if _, err := hs.keys.Get(context.Background()); err != nil { // cached: the old key
		t.Fatal(err)
	}
	hs.env.PutSecret("sim-api-key", "tok") // regenerated in Skycore, updated in the secret
	resp, err := hs.invoke(t, context.Background(), withBody(t, `{"id":"rotated","to":"17743199144","mmsId":1000}`))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("invoke = %+v, %v", resp, err)
	}
	var codes []string
	for _, r := range hs.sim.Requests() {
		codes = append(codes, r.Code)
	}
	if diff := cmp.Diff([]string{"E104", ""}, codes); diff != "" {
		t.Errorf("simulator codes (-want +got):\n%s", diff)
	}
}

func TestWrongKeyIsConfigError(t *testing.T) {
	hs := newHarness(t, nil, nil)
	hs.env.PutSecret("wrong-key", "tok")
	resp, err := hs.invoke(t, context.Background(), withBody(t, `{"id":"badkey","to":"17743199144","mmsId":1000}`))
	if err != nil || len(resp.BatchItemFailures) != 1 {
		t.Fatalf("invoke = %+v, %v; want the record retried", resp, err)
	}
	if got := hs.kinds(t); !slices.Equal(got, []string{"badkey:retrying:E104"}) {
		t.Errorf("events = %v", got)
	}
	logs := hs.logs.String()
	if !strings.Contains(logs, `"level":"ERROR"`) || !strings.Contains(logs, `"ConfigError":1`) {
		t.Errorf("config error must be logged at ERROR with a metric:\n%s", logs)
	}
}

func TestDeadlineNear(t *testing.T) {
	hs := newHarness(t, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second) // < the least useful call + margin
	defer cancel()
	resp, err := hs.invoke(t, ctx, loadEvent(t, "batch-mixed"))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 4 {
		t.Errorf("failures = %v, want every record left for redelivery", resp.BatchItemFailures)
	}
	if n := len(hs.sim.Requests()); n != 0 {
		t.Errorf("%d calls started with no time left", n)
	}
}

func TestSecretsManagerDownAtColdStart(t *testing.T) {
	hs := newHarness(t, nil, nil)
	hs.env.SecretsFaults.SetDown(true)
	_, err := hs.invoke(t, context.Background(), loadEvent(t, "batch-mixed"))
	if err == nil || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("invoke error = %v, want a clear secret error (whole batch retried)", err)
	}
	if n := len(hs.sim.Requests()); n != 0 {
		t.Errorf("%d calls made without a key", n)
	}
}

func TestDynamoDBThrottling(t *testing.T) {
	// It waits on leases and windows: overlap it with the others.
	t.Parallel()
	t.Run("absorbed by retries", func(t *testing.T) {
		hs := newHarness(t, nil, nil)
		hs.needsProxy(t)
		hs.env.Proxy.ThrottleNext(2)
		resp, err := hs.invoke(t, context.Background(), withBody(t, `{"id":"throttled","to":"17743199144","mmsId":1000}`))
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("invoke = %+v, %v", resp, err)
		}
		if hs.env.Proxy.Throttled() != 2 || hs.sim.Counts().Accepted["throttled"] != 1 {
			t.Errorf("throttled %d, accepted %v", hs.env.Proxy.Throttled(), hs.sim.Counts().Accepted)
		}
	})
	t.Run("claim throttled for long: retried later, nothing sent", func(t *testing.T) {
		hs := newHarness(t, nil, nil)
		hs.needsProxy(t)
		hs.env.Proxy.ThrottleFor(time.Hour)
		resp, err := hs.invoke(t, context.Background(), withBody(t, `{"id":"throttled-long","to":"17743199144","mmsId":1000}`))
		if err != nil || len(resp.BatchItemFailures) != 1 {
			t.Fatalf("invoke = %+v, %v", resp, err)
		}
		if len(hs.sim.Requests()) != 0 {
			t.Error("sent without a claim")
		}
	})
	t.Run("bookkeeping throttled after acceptance: never resent", func(t *testing.T) {
		hs := newHarness(t, nil, nil)
		hs.needsProxy(t)
		// Every write that records the acceptance is throttled for this invocation.
		hs.env.Proxy.ThrottleMatching(`"ACCEPTED"`, 1000)
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		resp, err := hs.invoke(t, ctx, withBody(t, `{"id":"book-1","to":"17743199144","mmsId":1000}`))
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("invoke = %+v, %v; want the message re-enqueued and deleted", resp, err)
		}
		requeued := hs.drain(t, localenv.SendQueue)
		if len(requeued) != 1 || requeued[0].MessageAttributes[HandoffMACAttr].StringValue == nil {
			t.Fatalf("send queue = %+v, want the message back with a signed %s", requeued, HandoffAttr)
		}
		hs.env.Proxy.ThrottleMatching("", 0)
		// The re-enqueued message as the next invocation sees it.
		resp, err = hs.invoke(t, context.Background(), fromQueue(t, requeued[0]))
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("second invoke = %+v, %v", resp, err)
		}
		if n := hs.sim.Counts().Received["book-1"]; n != 1 {
			t.Errorf("sent %d times, want 1", n)
		}
		if got := hs.kinds(t); !slices.Equal(got, []string{"book-1:accepted:"}) {
			t.Errorf("events = %v", got)
		}
	})
}

func TestEventPublishFailsAfterAcceptance(t *testing.T) {
	hs := newHarness(t, nil, nil)
	hs.env.SQSFaults.RefuseSends(func(q string) error {
		if q == localenv.EventQueue {
			return errors.New("events queue down")
		}
		return nil
	})
	ev := withBody(t, `{"id":"pub-1","to":"17743199144","mmsId":1000}`)
	resp, err := hs.invoke(t, context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 1 {
		t.Fatalf("invoke = %+v, %v; want the record back for its event", resp, err)
	}
	hs.env.SQSFaults.RefuseSends(nil)
	resp, err = hs.invoke(t, context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("redelivery = %+v, %v", resp, err)
	}
	if n := hs.sim.Counts().Received["pub-1"]; n != 1 {
		t.Errorf("sent %d times, want 1", n)
	}
	if got := hs.kinds(t); !slices.Equal(got, []string{"pub-1:accepted:"}) {
		t.Errorf("events = %v, want the accepted event once", got)
	}
}

func TestMalformedBodies(t *testing.T) {
	t.Run("unknown field: rejected through the claim, once, no DLQ", func(t *testing.T) {
		hs := newHarness(t, nil, nil)
		for range 2 { // the second delivery of a final id publishes nothing
			resp, err := hs.invoke(t, context.Background(), loadEvent(t, "unknown-field"))
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("invoke = %+v, %v", resp, err)
			}
		}
		evs, _ := hs.env.DrainEvents()
		if len(evs) != 1 || evs[0].ID != "typo-1" || evs[0].Event != "rejected" || evs[0].Code != "E100" || !strings.Contains(evs[0].Error, "subjet") {
			t.Errorf("events = %+v, want one rejected E100 naming subjet", evs)
		}
		if dlq := hs.peek(t, localenv.SendDLQ); len(dlq) != 0 {
			t.Errorf("DLQ = %+v, want nothing", dlq)
		}
	})
	t.Run("no DLQ configured: left to the redrive policy", func(t *testing.T) {
		hs := newHarness(t, nil, func(c *Config) { c.DLQURL = "" })
		resp, err := hs.invoke(t, context.Background(), loadEvent(t, "batch-mixed"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(failed(resp), "m-malformed") {
			t.Errorf("failures = %v, want the malformed body reported", failed(resp))
		}
	})
	t.Run("vCard rules", func(t *testing.T) {
		hs := newHarness(t, nil, nil)
		if _, err := hs.invoke(t, context.Background(), loadEvent(t, "vcard-invalid")); err != nil {
			t.Fatal(err)
		}
		evs, _ := hs.env.DrainEvents()
		if len(evs) != 1 || evs[0].Code != "E1515" || !strings.Contains(evs[0].Error, "E1506") || !strings.Contains(evs[0].Error, "E1508") || !strings.Contains(evs[0].Error, "E1516") {
			t.Errorf("events = %+v", evs)
		}
		if len(hs.sim.Requests()) != 0 {
			t.Error("an invalid request reached Skycore")
		}
	})
}

func TestBackoffThroughQueue(t *testing.T) {
	// It waits on leases and windows: overlap it with the others.
	t.Parallel()
	hs := newHarness(t, func(c *sim.Config) {
		c.Faults = []sim.Fault{{Kind: "E106", Seconds: 40, Match: sim.Match{ToSuffix: "9144"}}, {Kind: "E713", Match: sim.Match{ToSuffix: "0713"}}}
	}, nil)
	for _, body := range []string{`{"id":"bo-1","to":"17743199144","mmsId":1000}`, `{"id":"bo-2","to":"17745550713","mmsId":1000}`} {
		hs.enqueue(t, body)
	}
	msgs := hs.receive(t, 2, 30*time.Second)
	ev := events.SQSEvent{}
	for _, m := range msgs {
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
			Body: aws.ToString(m.Body), Attributes: map[string]string{"ApproximateReceiveCount": "1"}})
	}
	resp, err := hs.invoke(t, context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 2 {
		t.Fatalf("invoke = %+v, %v", resp, err)
	}
	for _, m := range msgs {
		wait, ok := hs.hiddenFor(t, m.ReceiptHandle)
		switch {
		case !ok:
			t.Errorf("%s: no visibility set", aws.ToString(m.Body))
		case strings.Contains(aws.ToString(m.Body), "bo-1") && (wait < 40*time.Second || wait > 45*time.Second):
			t.Errorf("E106 every 40 s: visible again in %v", wait)
		case strings.Contains(aws.ToString(m.Body), "bo-2") && (wait < 15*time.Minute-time.Second || wait > 15*time.Minute+5*time.Second):
			t.Errorf("config error: visible again in %v, want 15 min", wait)
		}
	}
	if n := hs.held(t, localenv.SendQueue); n != 2 {
		t.Errorf("%d messages hidden on the send queue, want both", n)
	}
}

func TestBackoffFormula(t *testing.T) {
	base, cap := 5*time.Second, 15*time.Minute
	tests := []struct {
		name     string
		n        int
		min, max time.Duration
	}{
		{"first receive", 1, 2500 * time.Millisecond, 5 * time.Second},
		{"third receive", 3, 10 * time.Second, 20 * time.Second},
		{"capped", 20, cap / 2, cap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 50 {
				if d := Backoff(tt.n, nil, base, cap); d < tt.min || d > tt.max {
					t.Fatalf("Backoff(%d) = %v, want %v-%v", tt.n, d, tt.min, tt.max)
				}
			}
		})
	}
}

func TestLogsHoldNoSecretsOrText(t *testing.T) {
	hs := newHarness(t, nil, nil)
	if _, err := hs.invoke(t, context.Background(), loadEvent(t, "batch-mixed")); err != nil {
		t.Fatal(err)
	}
	logs := hs.logs.String()
	if strings.Contains(logs, "sim-api-key") || strings.Contains(logs, "Hello & welcome") {
		t.Errorf("logs hold the API key or message text:\n%s", logs)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
	}
	if !strings.Contains(logs, `"message":"accepted"`) || !strings.Contains(logs, `"requestId"`) || !strings.Contains(logs, `"CloudWatchMetrics"`) {
		t.Errorf("want outcome lines with requestId and EMF metrics:\n%s", logs)
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{"SKYCORE_SECRET_ID": "s", "MESSAGES_TABLE": "t", "DELIVERY_EVENTS_QUEUE_URL": "q",
		"SKYCORE_TIMEOUT": "7s", "SEND_CONCURRENCY": "3", "SEND_RATE_PER_SECOND": "2.5", "SKYCORE_ENFORCE_CAMPAIGN_CHECK": "true", "MESSAGES_TTL_DAYS": "7",
		"SEND_RETRY_WINDOW": "2h", "SEND_INDOUBT_WINDOW": "0"}
	e, err := FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if e.CallTimeout != 7*time.Second || e.Concurrency != 3 || e.RatePerSecond != 2.5 || !e.Policy.EnforceCampaignCheck ||
		e.APIURL != skycore.DefaultEndpoint || e.TTL != 7*24*time.Hour || e.RetryWindow != 2*time.Hour || e.InDoubtWindow != 0 {
		t.Errorf("FromEnv = %+v", e)
	}
	e, err = FromEnv(func(k string) string {
		if strings.HasPrefix(k, "SEND_") && strings.HasSuffix(k, "_WINDOW") {
			return ""
		}
		return env[k]
	})
	if err != nil || e.RetryWindow != DefaultRetryWindow || e.InDoubtWindow != DefaultInDoubtWindow {
		t.Errorf("defaults: %v, %v, %v", e.RetryWindow, e.InDoubtWindow, err)
	}
	_, err = FromEnv(func(k string) string {
		return map[string]string{"SEND_CONCURRENCY": "0", "SKYCORE_TIMEOUT": "soon", "SEND_RETRY_WINDOW": "0", "SEND_INDOUBT_WINDOW": "-1m"}[k]
	})
	for _, want := range []string{"SKYCORE_SECRET_ID", "MESSAGES_TABLE", "DELIVERY_EVENTS_QUEUE_URL", "SEND_CONCURRENCY", "SKYCORE_TIMEOUT", "SEND_RETRY_WINDOW", "SEND_INDOUBT_WINDOW"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("FromEnv error %v does not name %s", err, want)
		}
	}
}

// TestRateLimitShared: the per-instance limit is shared by all workers. At
// one call per 2 s (burst 1), only one of three concurrent records can
// call Skycore before the deadline; the others are left for later rather
// than waiting past it.
func TestRateLimitShared(t *testing.T) {
	hs := newHarness(t, nil, func(c *Config) { c.RatePerSecond, c.Concurrency, c.CallTimeout = 0.5, 3, time.Second })
	ev := loadEvent(t, "duplicate-id")
	ev.Records = append(ev.Records, ev.Records[0])
	for i := range ev.Records {
		ev.Records[i].MessageId = fmt.Sprint("rl-", i)
		ev.Records[i].Body = fmt.Sprintf(`{"id":"rl-%d","to":"17743199144","mmsId":1000}`, i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := hs.invoke(t, ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs.sim.Requests()) != 1 || len(resp.BatchItemFailures) != 2 {
		t.Errorf("Skycore calls = %d, failures = %v; want 1 call and 2 records left for later", len(hs.sim.Requests()), resp.BatchItemFailures)
	}
}

// The record's history is the operator's view of each attempt
// (mmsgate status): a retried, then accepted request shows both attempts,
// each in its own slot.
func TestHistoryNumbersEachAttempt(t *testing.T) {
	hs := newHarness(t, func(c *sim.Config) {
		c.Faults = []sim.Fault{{Kind: "E503", Count: 1, Match: sim.Match{ToSuffix: "9144"}}}
	}, nil)
	ev := withBody(t, `{"id":"hist-1","to":"17743199144","mmsId":1000}`)
	for i, want := range []string{"retrying", "accepted"} {
		ev.Records[0].Attributes["ApproximateReceiveCount"] = strconv.Itoa(i + 1)
		if _, err := hs.invoke(t, context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		if got := hs.kinds(t); len(got) != 1 || !strings.HasPrefix(got[0], "hist-1:"+want+":") {
			t.Fatalf("delivery %d: events %v, want %s", i+1, got, want)
		}
	}
	m, err := store.New(hs.db, localenv.Table, 0).Get(context.Background(), "hist-1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range m.History {
		got = append(got, fmt.Sprintf("%d %s %s %s", s.Attempt, s.By, s.State, s.Code))
	}
	want := []string{"1 sender RETRY E503", "2 sender ACCEPTED "}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
}

// A batch's accepted events go out in SendMessageBatch calls (cost), and
// an entry SQS refuses is that record's failure alone: its event stays
// pending and its redelivery publishes it once, never sending again.
func TestBatchedEvents(t *testing.T) {
	hs := newHarness(t, nil, func(c *Config) { c.Concurrency = 10 }) // SEND_CONCURRENCY's default
	hs.box.Linger = time.Hour                                        // only the records' own progress flushes
	ev := batchOf(t, "batched", 10)
	var refused atomic.Int32
	hs.env.SQSFaults.RefuseSends(func(q string) error {
		if q == localenv.EventQueue && refused.Add(1) == 4 { // one entry of the events' batch
			return errors.New("entry refused")
		}
		return nil
	})
	resp, err := hs.invoke(t, context.Background(), ev)
	if err != nil || len(resp.BatchItemFailures) != 1 {
		t.Fatalf("invoke = %+v, %v; want one record back for its event", resp, err)
	}
	calls := hs.sqsCalls(localenv.EventQueue)
	single, batches := calls["SendMessage"], calls["SendMessageBatch"]
	if batches < 1 || single+batches > 3 {
		t.Errorf("events queue: %d SendMessage, %d SendMessageBatch calls for 10 events; want batches, at most 3 calls", single, batches)
	}
	if got := hs.kinds(t); len(got) != 9 {
		t.Errorf("events after the first delivery = %v; want the 9 not refused", got)
	}
	back := slices.IndexFunc(ev.Records, func(r events.SQSMessage) bool { return r.MessageId == resp.BatchItemFailures[0].ItemIdentifier })
	hs.env.SQSFaults.RefuseSends(nil)
	ev.Records = ev.Records[back : back+1]
	ev.Records[0].Attributes["ApproximateReceiveCount"] = "2"
	if resp, err := hs.invoke(t, context.Background(), ev); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("redelivery = %+v, %v", resp, err)
	}
	id := sendreq.PeekID([]byte(ev.Records[0].Body))
	if got := hs.kinds(t); !slices.Equal(got, []string{id + ":accepted:"}) {
		t.Errorf("events after the redelivery = %v; want %s's accepted event once", got, id)
	}
	for i := range 10 {
		if n := hs.sim.Counts().Received[fmt.Sprintf("batched-%d", i)]; n != 1 {
			t.Errorf("batched-%d sent %d times", i, n)
		}
	}
}
