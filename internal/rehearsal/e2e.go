package rehearsal

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/mmsgate/mmsgate/internal/faultproxy"
	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/sim"
	"github.com/mmsgate/mmsgate/internal/stack"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// runFunctions are the stack's functions the rehearsal runs: every
// AWS::Lambda::Function of the created stack with a built bootstrap.
func (d *Deployment) runFunctions(o Options) []string {
	var out []string
	for _, l := range sortedNames(d.Full) {
		if _, created := d.ids[l]; created && d.Full.Resources[l].Type == "AWS::Lambda::Function" && o.Bootstraps[l] != "" {
			out = append(out, l)
		}
	}
	return out
}

// recordedOps are the calls each function's proxy keeps for the role check.
var recordedOps = []string{"GetItem", "UpdateItem", "PutItem", "DeleteItem", "Query", "Scan", "BatchWriteItem", "BatchGetItem", "TransactWriteItems",
	"SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessage", "DeleteMessageBatch", "ChangeMessageVisibility",
	"ChangeMessageVisibilityBatch", "GetQueueAttributes", "GetQueueUrl", "GetSecretValue", "DescribeSecret",
	"PutEvents"} // EventBridge, when EventBusName is set

// Skycore is the simulator served over TLS, as Skycore's API is (the
// template accepts only an https SkycoreApiUrl): one address for the whole
// rehearsal, a fresh simulator behind it for each run.
type Skycore struct {
	srv      *httptest.Server
	URL      string // the API's URL
	CertFile string // its certificate, for the functions' SSL_CERT_FILE
	APIKey   string
	h        atomic.Pointer[http.Handler]
}

// StartSkycore starts the TLS front; apiKey is what the rehearsal puts in
// the created secret.
func StartSkycore(dir, apiKey string) (*Skycore, error) {
	s := &Skycore{APIKey: apiKey}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := s.h.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		http.Error(w, "no simulator", http.StatusServiceUnavailable)
	}))
	s.srv.StartTLS()
	s.URL = s.srv.URL + sim.APIPath
	cert := s.srv.TLS.Certificates[0]
	s.CertFile = filepath.Join(dir, "skycore-sim.pem")
	if err := os.WriteFile(s.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// run starts a simulator whose postbacks go to postbackURL.
func (s *Skycore) run(postbackURL string) (*sim.Server, error) {
	cfg := sim.Default()
	cfg.Accounts[0].APIKey = s.APIKey
	cfg.PostbackURL = postbackURL
	// The carrier of noReceiptTo sends no receipt: the receipt check's case.
	cfg.Scenarios.Rules = append(cfg.Scenarios.Rules, sim.ScenarioRule{Match: sim.Match{ToPrefix: noReceiptTo}, Scenario: sim.ScenarioNoReceipt})
	// Each run its own tracking ids, as Skycore's never repeat: the
	// simulator derives them from its seed.
	cfg.Seed = time.Now().UnixNano()
	sm, err := sim.New(cfg)
	if err != nil {
		return nil, err
	}
	h := sm.Handler()
	s.h.Store(&h)
	return sm, nil
}

// Close stops it.
func (s *Skycore) Close() { s.srv.Close() }

// noReceiptTo is the recipient of the request whose final receipt never
// comes (the run with the receipt check).
const noReceiptTo = "17743199147"

// RunResult is what one end-to-end run saw.
type RunResult struct {
	Statuses  []string // the delivery events' statuses, in order
	Bulk      []string // the bulk lane's request's, in order
	Swept     bool     // the schedule sweep ran
	Scheduled []string // the swept request's events, in order
	NoReceipt []string // the events of the request with no receipt (receipt check), in order
	BusEvents int      // the requests' events read from the bus rule's queue, each as on the delivery-events queue
	Calls     map[string][]Call
}

// Call is one AWS call a function made.
type Call struct {
	Function string
	Action   string // service:Operation
	Resource string // the ARN it names
	Key      string // the item's partition key (DynamoDB)
}

// functionConfig reads a created function back from the engine and builds
// the environment it runs with: exactly its variables, plus what the Lambda
// runtime provides (region, the role's credentials) and the local
// additions: AWS_ENDPOINT_URL (its own recording proxy in front of moto)
// and SSL_CERT_FILE (the simulator's certificate).
func (d *Deployment) functionConfig(ctx context.Context, logical, bootstrap, endpoint, certFile string) (stack.Function, string, map[string]string, error) {
	out, err := d.c.lam.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(d.ids[logical])})
	if err != nil {
		return stack.Function{}, "", nil, fmt.Errorf("%s: %w", logical, err)
	}
	vars := map[string]string{}
	if out.Environment != nil {
		vars = out.Environment.Variables
	}
	var env []string
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	env = append(env, "AWS_REGION="+Region, "AWS_DEFAULT_REGION="+Region,
		"AWS_ACCESS_KEY_ID="+logical, "AWS_SECRET_ACCESS_KEY=rehearsal", "AWS_SESSION_TOKEN=rehearsal",
		"AWS_ENDPOINT_URL="+endpoint, "SSL_CERT_FILE="+certFile)
	f := stack.Function{Bootstrap: bootstrap, Env: env, Timeout: time.Duration(aws.ToInt32(out.Timeout)) * time.Second, Memory: int(aws.ToInt32(out.MemorySize))}
	return f, aws.ToString(out.Role), vars, nil
}

// e2e runs the system on what the stack created: one request sent through
// to `delivered` with its postbacks through the adapter, and, when
// receiptCheck, its receipt check polled until it fires.
func (d *Deployment) e2e(ctx context.Context, o Options, sky *Skycore, runID string, receiptCheck bool) (res RunResult, err error) {
	res = RunResult{Calls: map[string][]Call{}}
	proxies := map[string]*faultproxy.Proxy{}
	errs := &errorLines{}
	o.Logs = teeLogs(o.Logs, errs)
	defer func() {
		for fn, p := range proxies {
			for _, op := range recordedOps {
				for _, rec := range p.Recorded(op) {
					res.Calls[fn] = append(res.Calls[fn], callOf(fn, op, rec.Body))
				}
			}
			p.Close()
		}
		if err != nil && errs.String() != "" {
			err = fmt.Errorf("%w\nthe functions' errors:\n%s", err, errs)
		}
	}()
	fns := map[string]stack.Function{}
	vars := map[string]map[string]string{}
	for _, fn := range d.runFunctions(o) {
		p, url, err := faultproxy.Front(o.motoURL, "127.0.0.1:0")
		if err != nil {
			return res, err
		}
		p.Record(recordedOps...)
		proxies[fn] = p
		f, _, v, err := d.functionConfig(ctx, fn, o.Bootstraps[fn], url, sky.CertFile)
		if err != nil {
			return res, err
		}
		fns[fn], vars[fn] = f, v
	}
	token, err := d.secretKey(ctx, d.Outputs["PostbackSecretArn"], "postback_token")
	if err != nil {
		return res, fmt.Errorf("postback token from the created secret: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	sm, err := sky.run("http://" + l.Addr().String() + "/skycore/postbacks/" + token)
	if err != nil {
		l.Close()
		return res, err
	}
	defer sm.Close()
	env := &localenv.Env{SQSURL: o.motoURL, SecretURL: o.motoURL, AWS: d.c.cfg,
		SendQueueURL: d.Outputs["SendQueueUrl"], DLQURL: d.Outputs["SendDeadLetterQueueUrl"],
		EventsQueueURL: d.Outputs["DeliveryEventsQueueUrl"], ReceiptQueueURL: d.ids["ReceiptCheckQueue"],
		// The bulk lane as the created sender knows it (its environment).
		BulkSendQueueURL: vars[stack.SenderFunction]["BULK_SEND_QUEUE_URL"]}
	arns := map[string]string{}
	for name, u := range map[string]string{localenv.SendQueue: env.SendQueueURL, localenv.BulkSendQueue: env.BulkSendQueueURL, localenv.ReceiptQueue: env.ReceiptQueueURL} {
		if u != "" {
			arns[name] = "arn:aws:sqs:" + Region + ":" + Account + ":" + queueName(u)
		}
	}
	if err := d.disableMappings(ctx); err != nil {
		return res, err
	}
	batch, window, err := d.mapping(ctx, stack.SenderFunction, arns[localenv.SendQueue])
	if err != nil {
		return res, err
	}
	s, err := stack.StartDeployed(ctx, stack.DeployedOptions{Env: env, Sender: fns[stack.SenderFunction], Postback: fns[stack.PostbackFunction],
		ReceiptCheck: fns[stack.ReceiptFunction], ScheduleSweep: fns[stack.SweepFunction], QueueARNs: arns,
		BatchSize: batch, BatchWindow: window, Sim: sm, SimURL: sky.URL,
		Listener: l, Logs: o.Logs, Emulator: o.Emulator})
	if err != nil {
		return res, err
	}
	defer s.Close()
	id := "rehearsal-" + runID
	body := fmt.Sprintf(`{"id":%q,"to":"17743199144","from":"60856","mmsId":1000,"slides":[{"slide":1,"text":"rehearsal %s"}]}`, id, runID)
	if err := s.Enqueue(body); err != nil {
		return res, err
	}
	noReceiptID := id + "-noreceipt"
	if receiptCheck {
		// Its receipt never comes: the receipt check ends it `unconfirmed`.
		nbody := fmt.Sprintf(`{"id":%q,"to":%q,"from":"60856","mmsId":1000,"slides":[{"slide":1,"text":"rehearsal no receipt %s"}]}`, noReceiptID, noReceiptTo, runID)
		if err := s.Enqueue(nbody); err != nil {
			return res, err
		}
	}
	wait := 2 * time.Minute
	if o.Quick {
		wait = 45 * time.Second // a broken template: the cause is in the calls made so far
	}
	pctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	last := time.Now()
	if err := s.Pump(pctx, func(p stack.Progress) {
		if time.Since(last) > 10*time.Second {
			o.progress("end to end %s: %d batches, %d queued, %d events", runID, p.Batches, p.Queued, p.Events)
			last = time.Now()
		}
	}); err != nil {
		return res, fmt.Errorf("end to end: %w", err)
	}
	bulkID := id + "-bulk"
	if env.BulkSendQueueURL != "" {
		// One request on the bulk lane, through the bulk mapping (its own
		// batch size and window, as the stack set them) to `delivered`.
		if _, _, err := d.mapping(ctx, stack.SenderFunction, arns[localenv.BulkSendQueue]); err != nil {
			return res, err
		}
		bbody := fmt.Sprintf(`{"id":%q,"to":"17743199145","from":"60856","mmsId":1000,"slides":[{"slide":1,"text":"rehearsal bulk %s"}]}`, bulkID, runID)
		if _, err := env.SendTo(ctx, localenv.BulkSendQueue, bbody, nil); err != nil {
			return res, fmt.Errorf("bulk send queue: %w", err)
		}
		if err := s.DrainBulk(pctx, nil); err != nil {
			return res, fmt.Errorf("end to end, bulk lane: %w", err)
		}
	}
	schedID, schedBulkID := id+"-scheduled", id+"-scheduled-bulk"
	if fns[stack.SweepFunction].Bootstrap != "" {
		// The sweeper as its schedule rule runs it, with the environment
		// and role the stack gave it, on one request due now. The sender
		// of this base does not record a sendAt yet: the rehearsal writes
		// the record as the sender's store call would (pkg/store,
		// RecordSchedule then ScheduledEventSent), in the table the
		// sweeper's environment names, and the request must come out of
		// the send queue `delivered`.
		// A second one scheduled from the bulk lane must come back to the
		// bulk queue (the sweeper's grant on it is then used, and checked).
		st := store.New(dynamodb.NewFromConfig(d.c.cfg), vars[stack.SweepFunction]["MESSAGES_TABLE"], 0)
		now := time.Now()
		for _, sc := range []struct{ id, lane string }{{schedID, ""}, {schedBulkID, "bulk"}} {
			if sc.lane == "bulk" && env.BulkSendQueueURL == "" {
				continue
			}
			body := fmt.Sprintf(`{"id":%q,"to":"17743199146","from":"60856","mmsId":1000,"slides":[{"slide":1,"text":"rehearsal scheduled %s"}]}`, sc.id, runID)
			if won, _, err := st.RecordSchedule(pctx, sc.id, store.ScheduleRequest{Body: body, SendAt: now.Add(time.Second), Lane: sc.lane,
				To: "17743199146", From: "60856", MMSID: "1000", Owner: "rehearsal", Hold: now}); err != nil || !won {
				return res, fmt.Errorf("schedule %s: won %v, %v", sc.id, won, err)
			}
			if err := st.ScheduledEventSent(pctx, sc.id); err != nil {
				return res, fmt.Errorf("schedule %s: %w", sc.id, err)
			}
		}
		if err := s.Sweep(pctx); err != nil {
			return res, fmt.Errorf("%s: %w", stack.SweepFunction, err)
		}
		if err := s.Pump(pctx, nil); err != nil {
			return res, fmt.Errorf("end to end, after the schedule sweep: %w", err)
		}
		if env.BulkSendQueueURL != "" {
			if err := s.DrainBulk(pctx, nil); err != nil {
				return res, fmt.Errorf("end to end, bulk lane after the schedule sweep: %w", err)
			}
		}
		res.Swept = true
	}
	if receiptCheck {
		rbatch, rwindow, err := d.mapping(ctx, stack.ReceiptFunction, arns[localenv.ReceiptQueue])
		if err != nil {
			return res, err
		}
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		before := s.Invokes(stack.ReceiptFunction)
		if err := s.PollReceipts(rctx, rbatch, rwindow, func() bool {
			c, err := env.QueueCounts(rctx, env.ReceiptQueueURL)
			// The check of the first run waits its 24h, delayed.
			return err == nil && s.Invokes(stack.ReceiptFunction) > before && c.Visible+c.InFlight == 0 &&
				slices.ContainsFunc(s.Events(), func(e delivery.Event) bool { return e.ID == noReceiptID && e.Event == delivery.Unconfirmed })
		}); err != nil {
			return res, fmt.Errorf("the receipt check did not fire: %w", err)
		}
	}
	all := s.Events()
	var bulk, schedBulk []string
	for _, ev := range all {
		switch ev.ID {
		case schedBulkID:
			schedBulk = append(schedBulk, ev.Event)
		case id:
			res.Statuses = append(res.Statuses, ev.Event)
		case bulkID:
			bulk = append(bulk, ev.Event)
		case schedID:
			res.Scheduled = append(res.Scheduled, ev.Event)
		case noReceiptID:
			res.NoReceipt = append(res.NoReceipt, ev.Event)
		}
	}
	if len(res.Statuses) == 0 || res.Statuses[len(res.Statuses)-1] != "delivered" {
		return res, fmt.Errorf("request %s: events %v (of %d on the queue), want it to end `delivered`", id, res.Statuses, len(all))
	}
	if res.Swept && (len(res.Scheduled) == 0 || res.Scheduled[len(res.Scheduled)-1] != "delivered") {
		return res, fmt.Errorf("scheduled request %s: events %v (of %d on the queue), want it swept to the send queue and `delivered`", schedID, res.Scheduled, len(all))
	}
	if res.Swept && env.BulkSendQueueURL != "" && (len(schedBulk) == 0 || schedBulk[len(schedBulk)-1] != "delivered") {
		return res, fmt.Errorf("scheduled bulk request %s: events %v (of %d on the queue), want it swept to the bulk queue and `delivered`", schedBulkID, schedBulk, len(all))
	}
	if receiptCheck && (len(res.NoReceipt) == 0 || res.NoReceipt[len(res.NoReceipt)-1] != delivery.Unconfirmed) {
		return res, fmt.Errorf("request %s (no receipt): events %v (of %d on the queue), want the receipt check to end it `unconfirmed`", noReceiptID, res.NoReceipt, len(all))
	}
	if env.BulkSendQueueURL != "" {
		if len(bulk) == 0 || bulk[len(bulk)-1] != "delivered" {
			return res, fmt.Errorf("bulk request %s: events %v (of %d on the queue), want it to end `delivered`", bulkID, bulk, len(all))
		}
		res.Bulk = bulk
	}
	if d.BusQueueURL != "" {
		ids := []string{id}
		if env.BulkSendQueueURL != "" {
			ids = append(ids, bulkID)
		}
		if res.Swept {
			ids = append(ids, schedID)
		}
		if receiptCheck {
			ids = append(ids, noReceiptID)
		}
		if res.BusEvents, err = d.checkBus(ctx, env, s.Events, ids...); err != nil {
			return res, fmt.Errorf("event bus: %w", err)
		}
	}
	for fn, p := range proxies {
		for c, n := range p.Calls() {
			if !contains(recordedOps, c.Op) && n > 0 {
				return res, fmt.Errorf("%s made %d %s calls, which the role check does not know", fn, n, c.Op)
			}
			if c.Outcome == faultproxy.Failed && n > 0 {
				return res, fmt.Errorf("%s: %d %s calls failed", fn, n, c.Op)
			}
		}
	}
	return res, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// mapping reads the event source mapping of a function on a queue (its
// ARN) as the stack set it: a function may have several (the sender reads
// the send and the bulk queues).
func (d *Deployment) mapping(ctx context.Context, fn, queueARN string) (int, time.Duration, error) {
	out, err := d.c.lam.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{FunctionName: aws.String(d.ids[fn])})
	if err != nil {
		return 0, 0, err
	}
	var found []string
	for _, m := range out.EventSourceMappings {
		if aws.ToString(m.EventSourceArn) == queueARN {
			return int(aws.ToInt32(m.BatchSize)), time.Duration(aws.ToInt32(m.MaximumBatchingWindowInSeconds)) * time.Second, nil
		}
		found = append(found, aws.ToString(m.EventSourceArn))
	}
	return 0, 0, fmt.Errorf("%s has no event source mapping on %s (it has %v)", fn, queueARN, found)
}

func (d *Deployment) secretKey(ctx context.Context, id, key string) (string, error) {
	out, err := d.c.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	if err != nil {
		return "", err
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &m); err != nil {
		return "", err
	}
	return m[key], nil
}

// callOf turns a recorded call into the action and resource IAM checks.
func callOf(fn, op string, body []byte) Call {
	var b struct {
		QueueUrl  string
		TableName string
		IndexName string
		SecretId  string
		Key       map[string]map[string]any
		Entries   []struct{ EventBusName string }
	}
	json.Unmarshal(body, &b)
	c := Call{Function: fn}
	switch {
	case b.QueueUrl != "":
		c.Action, c.Resource = "sqs:"+op, "arn:aws:sqs:"+Region+":"+Account+":"+queueName(b.QueueUrl)
	case b.TableName != "":
		c.Action, c.Resource = "dynamodb:"+op, "arn:aws:dynamodb:"+Region+":"+Account+":table/"+b.TableName
		if b.IndexName != "" { // a Query on an index: IAM names the index
			c.Resource += "/index/" + b.IndexName
		}
		for _, v := range b.Key {
			if s, ok := v["S"].(string); ok {
				c.Key = s
			}
		}
	case op == "PutEvents":
		bus := "default"
		if len(b.Entries) > 0 && b.Entries[0].EventBusName != "" {
			bus = b.Entries[0].EventBusName
		}
		c.Action, c.Resource = "events:"+op, busARN(bus)
		if strings.HasPrefix(bus, "arn:") { // EventBusName may be the bus's ARN
			c.Resource = bus
		}
	case b.SecretId != "":
		c.Action, c.Resource = "secretsmanager:"+op, b.SecretId
	default:
		c.Action = "unknown:" + op
	}
	return c
}

// errorLines keeps the functions' ERROR log lines (at most 10).
type errorLines struct {
	mu    sync.Mutex
	lines []string
}

func (e *errorLines) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range strings.Split(string(p), "\n") {
		if strings.Contains(l, `"level":"ERROR"`) && len(e.lines) < 10 {
			e.lines = append(e.lines, "  "+l)
		}
	}
	return len(p), nil
}

func (e *errorLines) String() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return strings.Join(e.lines, "\n")
}

func teeLogs(w io.Writer, e *errorLines) io.Writer {
	if w == nil {
		return e
	}
	return io.MultiWriter(w, e)
}

// disableMappings turns the engine's event source mappings off in moto,
// which differs from AWS here: on every SendMessage to a mapped queue it
// invokes the function itself (in Docker, absent here) and, when that
// fails, puts the message back with its receive count raised. The
// rehearsal's poller is the mapping, with the batch size and window the
// stack set.
func (d *Deployment) disableMappings(ctx context.Context) error {
	out, err := d.c.lam.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{})
	if err != nil {
		return err
	}
	for _, m := range out.EventSourceMappings {
		if _, err := d.c.lam.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: m.UUID, Enabled: aws.Bool(false)}); err != nil {
			return fmt.Errorf("disable mapping %s: %w", aws.ToString(m.UUID), err)
		}
	}
	return nil
}
