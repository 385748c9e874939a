package stack

import (
	"context"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/mmsgate/mmsgate/internal/apigw"
	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/rie"
	"github.com/mmsgate/mmsgate/internal/sim"
)

// Function is one function as a deployed stack configured it: its
// environment exactly as the created function carries it (plus what the
// caller must add locally, such as the endpoint of the stand-ins), its
// timeout and memory.
type Function struct {
	Bootstrap string
	Env       []string
	Timeout   time.Duration
	Memory    int
}

// DeployedOptions run the functions of a created stack (internal/rehearsal)
// instead of the local stack's own resources.
type DeployedOptions struct {
	// Env reaches the stack's queues: its SendQueueURL, DLQURL,
	// EventsQueueURL and ReceiptQueueURL are the created queues. The caller
	// owns what serves it (Close leaves it alone).
	Env                            *localenv.Env
	Sender, Postback, ReceiptCheck Function
	ScheduleSweep                  Function // its Bootstrap "": none runs (Sweep)
	// QueueARNs are the created queues' ARNs by local queue name
	// (localenv.SendQueue, localenv.BulkSendQueue…), for the records'
	// eventSourceARN.
	QueueARNs   map[string]string
	BatchSize   int           // the send mapping's BatchSize
	BatchWindow time.Duration // the send mapping's MaximumBatchingWindowInSeconds
	Sim         *sim.Server   // Skycore, started by the caller
	SimURL      string
	Listener    net.Listener // the API Gateway adapter's (its URL is in the simulator's PostbackURL)
	Logs        io.Writer
	Emulator    string
}

// StartDeployed runs one instance of each function under its emulator,
// the event source mappings' poller and the API Gateway adapter over the
// caller's resources. Close stops what it started.
func StartDeployed(ctx context.Context, o DeployedOptions) (*Stack, error) {
	s := &Stack{Env: o.Env, Sim: o.Sim, SimURL: o.SimURL, inFlight: map[string]int{}, borrowed: true,
		opts:     Options{BatchSize: o.BatchSize, BatchWindow: o.BatchWindow, Logs: o.Logs},
		reports:  map[string]*reports{SenderFunction: {next: o.Logs}, PostbackFunction: {next: o.Logs}, ReceiptFunction: {next: o.Logs}},
		esmUsage: map[string]ESMUsage{}, arns: o.QueueARNs}
	s.reports[SweepFunction] = &reports{next: o.Logs}
	fail := func(err error) (*Stack, error) { s.Close(); return nil, err }
	start := func(name string, f Function) (*rie.Instance, error) {
		return rie.Start(ctx, name, rie.Options{Emulator: o.Emulator, Bootstrap: f.Bootstrap, Env: f.Env, Timeout: f.Timeout,
			Memory: f.Memory, Logs: s.reports[name]})
	}
	inst, err := start(SenderFunction, o.Sender)
	if err != nil {
		return fail(err)
	}
	s.Senders = []*rie.Instance{inst}
	if inst, err = start(PostbackFunction, o.Postback); err != nil {
		return fail(err)
	}
	s.postbacks, s.Postback = []*rie.Instance{inst}, inst
	// Not s.Receipt: Pump would wait for the receipt queue to empty, and a
	// check made with a long ReceiptWindow stays on it (PollReceipts).
	if s.deployedReceipt, err = start(ReceiptFunction, o.ReceiptCheck); err != nil {
		return fail(err)
	}
	if o.ScheduleSweep.Bootstrap != "" {
		if s.Sweeper, err = start(SweepFunction, o.ScheduleSweep); err != nil {
			return fail(err)
		}
	}
	s.Adapter = "http://" + o.Listener.Addr().String()
	h := apigw.Handler(apigw.Route{Method: "ANY", Path: "/skycore/postbacks/{token}"}, s.invokePostback)
	s.adapter = &http.Server{Handler: countRequests(&s.apiRequests, h), ReadHeaderTimeout: 10 * time.Second}
	go s.adapter.Serve(o.Listener)
	return s, nil
}

// PollReceipts runs the receipt queue's event source mapping (batches of
// batchSize, waiting up to window, as the stack set them) until done says
// so or ctx ends: checks not yet due stay hidden on the queue, as on AWS.
func (s *Stack) PollReceipts(ctx context.Context, batchSize int, window time.Duration, done func() bool) error {
	q := s.Env.SQSClient()
	saved := s.opts
	s.opts.BatchSize, s.opts.BatchWindow = batchSize, window
	defer func() { s.opts = saved }()
	for !done() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		batch, err := s.receiveBatch(ctx, q, s.Env.ReceiptQueueURL, receiptSource.queue, false)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		s.invokeBatch(ctx, s.deployedReceipt, q, receiptSource, batch)
	}
	s.collect()
	return nil
}

// DrainBulk runs the bulk queue's event source mapping on the sender
// until the bulk queue is empty, then waits for the simulator's postbacks
// and reads the events (Events).
func (s *Stack) DrainBulk(ctx context.Context, progress func(Progress)) error {
	if err := s.esm(ctx, s.Senders[0], bulkSource, false, progress); err != nil {
		return err
	}
	if err := s.Sim.WaitIdle(ctx); err != nil {
		return err
	}
	s.collect()
	return nil
}

// Invokes counts the invocations of a function so far.
func (s *Stack) Invokes(function string) int64 { return s.reports[function].invokes.Load() }
