// Package stack runs all of mmsgate on one machine: the local AWS
// stand-ins, the Skycore simulator, both bootstraps under their own
// Runtime Interface Emulator, an HTTP → API Gateway adapter in front of
// the postback function, and a poller that feeds the send queue to the
// sender as Lambda's SQS event source mapping does.
package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/mmsgate/mmsgate/internal/apigw"
	"github.com/mmsgate/mmsgate/internal/dynalite"
	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/rie"
	"github.com/mmsgate/mmsgate/internal/sim"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// RIEPackage is the pinned emulator (a tool directive in go.mod).
const RIEPackage = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"

// Binaries are the built programs.
type Binaries struct {
	Emulator     string
	Sender       string
	Postback     string
	ReceiptCheck string
	// ScheduleSweep is the schedule-sweep function ("": none runs).
	ScheduleSweep string
}

// Build compiles both bootstraps for this machine and the emulator.
func Build(ctx context.Context, root string) (Binaries, error) {
	b := Binaries{
		Emulator:      filepath.Join(root, ".bin", "aws-lambda-rie"),
		Sender:        filepath.Join(root, ".run", "send-mms", "bootstrap"),
		Postback:      filepath.Join(root, ".run", "postback", "bootstrap"),
		ReceiptCheck:  filepath.Join(root, ".run", "receipt-check", "bootstrap"),
		ScheduleSweep: filepath.Join(root, ".run", "schedule-sweep", "bootstrap"),
	}
	builds := [][]string{
		{b.Emulator, RIEPackage},
		{b.Sender, "./functions/send-mms"},
		{b.Postback, "./functions/postback"},
		{b.ReceiptCheck, "./functions/receipt-check"},
		{b.ScheduleSweep, "./functions/schedule-sweep"},
	}
	for _, x := range builds {
		cmd := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", x[0], x[1])
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s: %v\n%s", x[1], err, out)
		}
	}
	return b, nil
}

// Options of Start.
type Options struct {
	Sim          sim.Config
	SenderEnv    []string                        // extra variables for the sender (SEND_CONCURRENCY=…)
	Timeout      time.Duration                   // the functions' timeout (default 30 s)
	BatchSize    int                             // the event source mapping's (default 10)
	Senders      int                             // sender instances (emulators) polling in parallel (default 1)
	Postbacks    int                             // postback instances behind the adapter (default 1)
	Visibility   time.Duration                   // the send queue's visibility timeout (default 6 × Timeout)
	MaxReceive   int                             // the send queue's redrive limit (default 5)
	Logs         io.Writer                       // the functions' log lines (nil: discarded)
	PostbackHTTP func(http.Handler) http.Handler // wraps the adapter (fault injection)

	// Moto serves SQS and Secrets Manager from one moto_server port with
	// no fault proxy in front (`make run`, `make dev`).
	Moto bool
	// InProcess serves SQS and Secrets Manager from the in-process
	// stand-ins behind the fault proxies (localenv.Options.InProcess): for
	// the soak, whose timing windows moto's load-dependent latency breaks.
	InProcess   bool
	Ports       localenv.Ports // fixed stand-in ports (0: free ones)
	DynamoPath  string         // keep DynamoDB's data here across restarts
	AdapterAddr string         // the API Gateway adapter's address (default a free loopback port)
	SimAddr     string         // the simulator's address (default a free loopback port)
	MotoLog     string         // moto_server's log file
	// KeepEvents leaves delivery events on their queue for an application
	// to read (`make dev`); Events then reports nothing.
	KeepEvents bool
	// BatchWindow is the event source mapping's MaximumBatchingWindowInSeconds.
	BatchWindow time.Duration
	// Returned is told the request ids of the records a sender handed back
	// (batchItemFailures): they come back after their visibility timeout.
	Returned func(ids []string)
	// RetryWindow and InDoubtWindow, when not "", become the sender's
	// SEND_RETRY_WINDOW and SEND_INDOUBT_WINDOW.
	RetryWindow, InDoubtWindow string
	// ReceiptWindow is RECEIPT_WINDOW ("" or "0": off); when on, the
	// receipt-check function runs and its queue is polled too.
	ReceiptWindow string
	// BulkSenders, when set, are instances of their own for the bulk
	// lane, as Lambda gives each event source mapping its own
	// MaximumConcurrency; 0: Senders poll both queues (`make dev`).
	BulkSenders int
	// EventBus puts every event also on an EventBridge bus with a rule
	// whose target is a queue (localenv.Options.EventBus; moto only).
	EventBus bool
	// SweepPeriod is how often Serve runs the schedule-sweep function
	// (default schedule.Period, as the deployed rule does).
	SweepPeriod time.Duration
}

// Stack is a running system.
type Stack struct {
	Env       *localenv.Env
	Sim       *sim.Server
	SimURL    string
	Senders   []*rie.Instance
	Postback  *rie.Instance // the first postback instance
	Receipt   *rie.Instance // the receipt-check function, when ReceiptWindow is on
	Sweeper   *rie.Instance // the schedule-sweep function (pkg/schedule), when built
	Adapter   string        // base URL of the API Gateway adapter
	Token     string
	opts      Options
	adapter   *http.Server
	postbacks []*rie.Instance

	// Bulk are Options.BulkSenders: the bulk lane's own instances.
	Bulk []*rie.Instance

	mu         sync.Mutex
	collecting sync.Mutex   // collect
	collectErr error        // collect's first failure
	feeders    atomic.Int32 // Feed calls under way
	batches    int
	events     []delivery.Event

	// What the events queue said of each event (collect): its message id
	// tells the system's second publication (a new id) from the stack's
	// own second reading of one message (the same id: a receive whose
	// visibility ran out before its delete).
	eventMeta []eventMeta
	eventIDs  map[string]bool
	reRead    int

	inFlight map[string]int // request ids in invocations under way
	next     int            // round-robin over postback instances

	// Usage's counters.
	reports     map[string]*reports // by function name
	apiRequests atomic.Int64
	esmUsage    map[string]ESMUsage // by queue name
	// borrowed: Env and Sim belong to the caller (StartDeployed).
	borrowed        bool
	deployedReceipt *rie.Instance
	// arns are the deployed queues' ARNs by local queue name (StartDeployed):
	// a record's eventSourceARN names the real queue, as the sender's lane
	// (BULK_SEND_QUEUE_URL) is read from it.
	arns map[string]string
}

// Function names, as in template.yaml.
const (
	SenderFunction   = "SendMmsFunction"
	PostbackFunction = "PostbackFunction"
	ReceiptFunction  = "ReceiptCheckFunction"
	SweepFunction    = "ScheduleSweepFunction"
)

// Start builds nothing: pass Build's binaries.
func Start(ctx context.Context, bins Binaries, o Options) (*Stack, error) {
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.BatchSize == 0 {
		o.BatchSize = 10
	}
	if o.Senders == 0 {
		o.Senders = 1
	}
	if o.Postbacks == 0 {
		o.Postbacks = 1
	}
	if o.Visibility == 0 {
		o.Visibility = 6 * o.Timeout
	}
	s := &Stack{opts: o, Token: "local-postback-token", inFlight: map[string]int{},
		reports:  map[string]*reports{SenderFunction: {next: o.Logs}, PostbackFunction: {next: o.Logs}, ReceiptFunction: {next: o.Logs}},
		esmUsage: map[string]ESMUsage{}}
	var err error
	if o.MaxReceive == 0 {
		o.MaxReceive = 5
	}
	s.opts = o
	if s.Env, err = localenv.Start(ctx, localenv.Options{PostbackToken: s.Token, Visibility: o.Visibility, MaxReceive: o.MaxReceive,
		Moto: o.Moto, InProcess: o.InProcess, Ports: o.Ports, DynamoPath: o.DynamoPath, MotoLog: o.MotoLog, EventBus: o.EventBus}); err != nil {
		return nil, err
	}
	fail := func(err error) (*Stack, error) { s.Close(); return nil, err }

	// The adapter first: the simulator needs its URL.
	l, err := net.Listen("tcp", or(o.AdapterAddr, "127.0.0.1:0"))
	if err != nil {
		return fail(fmt.Errorf("API Gateway adapter: %w", err))
	}
	s.Adapter = "http://" + l.Addr().String()
	o.Sim.PostbackURL = s.Adapter + "/skycore/postbacks/" + s.Token
	if s.Sim, err = sim.New(o.Sim); err != nil {
		return fail(err)
	}
	if s.SimURL, err = s.Sim.Start(or(o.SimAddr, "127.0.0.1:0")); err != nil {
		return fail(fmt.Errorf("simulator: %w", err))
	}

	common := s.Env.Environ()
	senderEnv := append(append([]string{}, common...), "SKYCORE_API_URL="+s.SimURL+sim.APIPath, "SKYCORE_DEFAULT_FROM=60856",
		"SKYCORE_TIMEOUT=5s", "LOG_LEVEL=INFO", "AWS_SDK_UA_APP_ID="+SenderAppID)
	if o.RetryWindow != "" {
		senderEnv = append(senderEnv, "SEND_RETRY_WINDOW="+o.RetryWindow)
	}
	if o.InDoubtWindow != "" {
		senderEnv = append(senderEnv, "SEND_INDOUBT_WINDOW="+o.InDoubtWindow)
	}
	receiptWindow := or(o.ReceiptWindow, "0")
	senderEnv = append(senderEnv, "RECEIPT_WINDOW="+receiptWindow)
	senderEnv = append(senderEnv, o.SenderEnv...)
	for n := range o.Senders {
		inst, err := rie.Start(ctx, SenderFunction, rie.Options{Emulator: bins.Emulator, Bootstrap: bins.Sender, Env: senderEnv, Timeout: o.Timeout,
			Memory: SenderMemoryMB, Logs: s.reports[SenderFunction]})
		if err != nil {
			return fail(fmt.Errorf("sender %d: %w", n, err))
		}
		s.Senders = append(s.Senders, inst)
	}
	for n := range o.BulkSenders {
		inst, err := rie.Start(ctx, SenderFunction, rie.Options{Emulator: bins.Emulator, Bootstrap: bins.Sender, Env: senderEnv, Timeout: o.Timeout,
			Memory: SenderMemoryMB, Logs: s.reports[SenderFunction]})
		if err != nil {
			return fail(fmt.Errorf("bulk sender %d: %w", n, err))
		}
		s.Bulk = append(s.Bulk, inst)
	}
	for range o.Postbacks {
		inst, err := rie.Start(ctx, PostbackFunction, rie.Options{Emulator: bins.Emulator, Bootstrap: bins.Postback,
			Env:     append(append([]string{}, common...), "LOG_LEVEL=INFO", "AWS_SDK_UA_APP_ID="+PostbackAppID, "RECEIPT_WINDOW="+receiptWindow),
			Timeout: 10 * time.Second, Memory: PostbackMemoryMB, Logs: s.reports[PostbackFunction]})
		if err != nil {
			return fail(err)
		}
		s.postbacks = append(s.postbacks, inst)
	}
	if receiptWindow != "0" {
		if s.Receipt, err = rie.Start(ctx, ReceiptFunction, rie.Options{Emulator: bins.Emulator, Bootstrap: bins.ReceiptCheck,
			Env: append(append([]string{}, common...), "LOG_LEVEL=INFO", "AWS_SDK_UA_APP_ID="+ReceiptAppID, "RECEIPT_WINDOW="+receiptWindow), Timeout: 10 * time.Second,
			Memory: ReceiptMemoryMB, Logs: s.reports[ReceiptFunction]}); err != nil {
			return fail(fmt.Errorf("receipt check: %w", err))
		}
	}
	if bins.ScheduleSweep != "" {
		if s.Sweeper, err = rie.Start(ctx, SweepFunction, rie.Options{Emulator: bins.Emulator, Bootstrap: bins.ScheduleSweep,
			Env: append(append([]string{}, common...), "LOG_LEVEL=INFO", "AWS_SDK_UA_APP_ID=schedule-sweep"), Timeout: time.Minute,
			Memory: 128, Logs: o.Logs}); err != nil {
			return fail(fmt.Errorf("schedule sweep: %w", err))
		}
	}
	s.Postback = s.postbacks[0]
	var h http.Handler = apigw.Handler(apigw.Route{Method: "ANY", Path: "/skycore/postbacks/{token}"}, s.invokePostback)
	if o.PostbackHTTP != nil {
		h = o.PostbackHTTP(h)
	}
	s.adapter = &http.Server{Handler: countRequests(&s.apiRequests, h), ReadHeaderTimeout: 10 * time.Second}
	go s.adapter.Serve(l)
	return s, nil
}

// Close stops everything Start started.
func (s *Stack) Close() {
	if s.adapter != nil {
		s.adapter.Close()
	}
	if s.Sim != nil && !s.borrowed {
		s.Sim.Close()
	}
	for _, i := range append(s.Senders, s.Bulk...) {
		i.Close()
	}
	for _, i := range s.postbacks {
		i.Close()
	}
	if s.Receipt != nil {
		s.Receipt.Close()
	}
	if s.Sweeper != nil {
		s.Sweeper.Close()
	}
	if s.deployedReceipt != nil {
		s.deployedReceipt.Close()
	}
	if s.Env != nil && !s.borrowed {
		s.Env.Close()
	}
}

// Feed runs feed (which enqueues requests) beside the pollers: while it
// runs, Pump does not take an empty send queue for a drained one. Pump
// concurrently with Feed to keep the queue shallow: moto's sends slow with
// the depth of the queue (BENCHMARKS.md).
func (s *Stack) Feed(feed func() error) <-chan error {
	s.feeders.Add(1)
	done := make(chan error, 1)
	go func() {
		defer s.feeders.Add(-1)
		done <- feed()
	}()
	return done
}

// QueuedRequests is how many messages the send queue holds, visible or not.
func (s *Stack) QueuedRequests(ctx context.Context) (int, error) {
	c, err := s.Env.QueueCounts(ctx, s.Env.SendQueueURL)
	return c.Total(), err
}

// Enqueue puts one send request body on the send queue.
func (s *Stack) Enqueue(body string) error {
	_, err := s.Env.SendTo(context.Background(), localenv.SendQueue, body, nil)
	return err
}

// Progress is what the poller has done so far.
type Progress struct {
	Batches, Queued, Events int
}

// Pump runs the event source mapping until the send queue is empty (no
// visible or hidden message) and no postback is pending, or ctx ends:
// batches of up to BatchSize go to the sender instances; records not
// reported in batchItemFailures are deleted, the others come back after
// their visibility timeout, and the queue's redrive moves poison messages.
func (s *Stack) Pump(ctx context.Context, progress func(Progress)) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(s.Senders))
	drain := func(inst *rie.Instance, src source) error { return s.esm(ctx, inst, src, false, progress) }
	if s.Sweeper != nil {
		// Scheduled requests come back through the sweeper, as deployed;
		// more often than its rule, so that a run is not slowed by it.
		sweepCtx, stop := context.WithCancel(ctx)
		defer stop()
		go s.sweepLoop(sweepCtx, PumpSweepPeriod)
	}
	for _, inst := range s.Senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := drain(inst, sendSource); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if err := s.Sim.WaitIdle(ctx); err != nil {
		return fmt.Errorf("postbacks still pending: %w", err)
	}
	if s.Receipt != nil {
		// The checks come due RECEIPT_WINDOW after each acceptance.
		if err := drain(s.Receipt, receiptSource); err != nil {
			return fmt.Errorf("receipt checks: %w", err)
		}
	}
	s.collect()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.collectErr != nil {
		return fmt.Errorf("reading the delivery events: %w", s.collectErr)
	}
	return nil
}

// source is a queue an event source mapping feeds to a function.
type source struct{ queue, function string }

var (
	sendSource    = source{localenv.SendQueue, SenderFunction}
	bulkSource    = source{localenv.BulkSendQueue, SenderFunction} // the bulk lane: its records' eventSourceARN names it
	receiptSource = source{localenv.ReceiptQueue, ReceiptFunction}
)

// invokePostback spreads postbacks over the instances (each takes one
// invoke at a time, like one Lambda instance).
func (s *Stack) invokePostback(ctx context.Context, payload []byte) ([]byte, error) {
	s.mu.Lock()
	inst := s.postbacks[s.next%len(s.postbacks)]
	s.next++
	s.mu.Unlock()
	s.countInvoke(PostbackFunction)
	return inst.Invoke(ctx, payload)
}

// track counts request ids in flight.
func (s *Stack) track(ids []string, d int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if s.inFlight[id] += d; s.inFlight[id] <= 0 {
			delete(s.inFlight, id)
		}
	}
}

// InFlight lists the request ids in sender invocations under way.
func (s *Stack) InFlight() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.inFlight))
	for id := range s.inFlight {
		out = append(out, id)
	}
	return out
}

// KillSenders kills every sender's function process mid-invocation, as a
// crash would, and says how many died; the emulators start them again on
// the next invoke.
func (s *Stack) KillSenders() int {
	n := 0
	for _, i := range s.Senders {
		n += i.KillRuntime()
	}
	return n
}

// PostbackInstances lists the postback emulators.
func (s *Stack) PostbackInstances() []*rie.Instance { return s.postbacks }

func (s *Stack) collect() {
	if s.opts.KeepEvents {
		return
	}
	// One drain at a time: two pollers' drains interleaved would append
	// a newer page of events before an older one.
	s.collecting.Lock()
	defer s.collecting.Unlock()
	msgs, err := s.Env.Drain(context.Background(), localenv.EventQueue)
	s.mu.Lock()
	if s.eventIDs == nil {
		s.eventIDs = map[string]bool{}
	}
	for _, m := range msgs {
		id := aws.ToString(m.MessageId)
		if s.eventIDs[id] {
			s.reRead++ // read before: the stack's own reading, not a publication
			continue
		}
		ev, derr := localenv.DecodeEvent(m)
		if derr != nil {
			err = errors.Join(err, derr)
			continue
		}
		s.eventIDs[id] = true
		sentMs, _ := strconv.ParseInt(m.Attributes["SentTimestamp"], 10, 64)
		s.events = append(s.events, ev)
		s.eventMeta = append(s.eventMeta, eventMeta{messageID: id, sentMs: sentMs, seq: len(s.eventMeta)})
	}
	if err != nil && s.collectErr == nil {
		s.collectErr = err // the events seen may lack or repeat some: Pump fails
	}
	s.mu.Unlock()
}

// eventMeta is what SQS said of one event's message.
type eventMeta struct {
	messageID string
	sentMs    int64 // SentTimestamp: when SQS took it
	seq       int   // the order it was read in
}

// Events returns every delivery event published so far, each message
// once, in the order SQS took them (SentTimestamp; read order within a
// millisecond): a message read late (a receive whose answer was lost) is
// put back where it was published.
func (s *Stack) Events() []delivery.Event {
	s.collect()
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := make([]int, len(s.events))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return s.eventMeta[idx[a]].sentMs < s.eventMeta[idx[b]].sentMs })
	out := make([]delivery.Event, len(idx))
	for i, j := range idx {
		out[i] = s.events[j]
	}
	return out
}

// EventsReRead is how many times the stack read an event's message again
// (the same message id): its own reading, never counted as a publication.
func (s *Stack) EventsReRead() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reRead
}

// Root is the repository root.
func Root() (string, error) { return dynalite.Root() }

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// PumpSweepPeriod is how often Pump runs the schedule-sweep function: a
// sweep hands off what is due within schedule.Lookahead, each body delayed
// to its sendAt, so a shorter period changes no send time, only how soon
// a run sees its scheduled requests on the queue.
const PumpSweepPeriod = 2 * time.Second

// scheduledWaiting reports whether a scheduled request still waits in the
// table (the due index lists every one whose scheduled event is out; one
// whose event is not out yet still has its message on the send queue).
func (s *Stack) scheduledWaiting(ctx context.Context) (bool, error) {
	if s.borrowed {
		// A deployed stack's table is not localenv's, and the rehearsal
		// drives its schedule sweeps itself.
		return false, nil
	}
	db := s.Env.DynamoDB()
	due, err := store.New(db, localenv.Table, 0).Due(ctx, db, time.Now().Add(sendreq.MaxSendAhead+24*time.Hour), 1)
	return len(due) > 0, err
}

// Sweep runs the schedule-sweep function once, as its rule does every
// minute: scheduled requests due within its look-ahead go back to the send
// queue. Nothing when no sweeper was built.
func (s *Stack) Sweep(ctx context.Context) error {
	if s.Sweeper == nil {
		return nil
	}
	out, err := s.Sweeper.Invoke(ctx, []byte(`{"source":"aws.events","detail-type":"Scheduled Event"}`))
	if err != nil {
		return err
	}
	if bytes.Contains(out, []byte(`"errorMessage"`)) {
		return fmt.Errorf("schedule sweep: %s", out)
	}
	return nil
}

// sweepLoop runs Sweep every SweepPeriod until ctx ends; a failed sweep is
// logged and the next one runs (as the rule would).
func (s *Stack) sweepLoop(ctx context.Context, period time.Duration) error {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if err := s.Sweep(ctx); err != nil && ctx.Err() == nil && s.opts.Logs != nil {
				fmt.Fprintf(s.opts.Logs, "schedule sweep failed: %v\n", err)
			}
		}
	}
}
