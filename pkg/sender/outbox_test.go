package sender

// The outbox integration (pkg/outbox, Handle's Group and Join), attacked
// by a review: an event must not outlive its record's claim by riding in
// a batch call with another invocation's (a process may run several).

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/outbox"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
)

// slowSQS is the sender's SQS client while SQS is slow (throttled, the
// SDK retrying): every send waits until open is closed, or fails with its
// context, as the SDK does. started is closed at the first send.
type slowSQS struct {
	inner   *sqs.Client
	open    chan struct{}
	started chan struct{}
	once    sync.Once
	mu      sync.Mutex
	entries []int // entries per SendMessageBatch
}

func (s *slowSQS) wait(ctx context.Context) error {
	s.once.Do(func() { close(s.started) })
	select {
	case <-s.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *slowSQS) SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	return s.inner.SendMessage(ctx, in, opts...)
}

func (s *slowSQS) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	s.mu.Lock()
	s.entries = append(s.entries, len(in.Entries))
	s.mu.Unlock()
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	return s.inner.SendMessageBatch(ctx, in, opts...)
}

// TestOutboxEventNeverOutlivesItsLease: two invocations run in one
// process (aws-lambda-go v1.55 runs AWS_LAMBDA_MAX_CONCURRENCY handlers
// concurrently; Handler is documented safe for concurrent use) and share
// the process-wide outbox. Invocation A's call of X times out (in doubt);
// its retrying event goes out, as designed, while A's claim is still
// held. SQS is slow and A's deadline (its claim's lease) passes during the
// call. Had it ridden in one SendMessageBatch with invocation B's event,
// the batch would live on B's context (batchContext), and A's retrying
// would reach the queue after the lease ended, after a postback recorded
// X's acceptance and published accepted and delivered: retrying after
// accepted, out of order. A retrying event is sent alone, with its own
// deadline ahead of the lease (announceRetrying).
func TestOutboxEventNeverOutlivesItsLease(t *testing.T) {
	// It waits on leases and windows: overlap it with the others.
	t.Parallel()
	for _, tc := range []struct {
		name        string
		outbox, two bool // the outbox wired; X and Y in two invocations (else one batch)
	}{
		{"no outbox, two invocations", false, true},
		{"outbox, one invocation", true, false}, // one deadline for the whole batch
		{"outbox, two invocations", true, true}, // one group each: X's retrying dies with A's deadline
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, nil, func(c *Config) { c.InDoubtWindow, c.MinCall = time.Minute, 100*time.Millisecond })
			slow := &slowSQS{inner: hs.env.SQSClient(), open: make(chan struct{}), started: make(chan struct{})}
			log := &orderLog{}
			// The postback function in its own process: SQS answers it.
			deliver := postbackTo(t, hs, &attackLog{inner: delivery.NewPublisher(hs.env.SQSClient(), hs.env.EventsQueueURL), orderLog: log})
			if tc.outbox { // as functions/send-mms wires it
				box := outbox.New(slow)
				hs.h.d.Outbox = box
				hs.h.d.Events = &attackLog{inner: delivery.NewPublisher(box, hs.env.EventsQueueURL), orderLog: log}
			} else {
				hs.h.d.Outbox = nil
				hs.h.d.Events = &attackLog{inner: delivery.NewPublisher(slow, hs.env.EventsQueueURL), orderLog: log}
			}
			// Both calls answer together: X's may have reached Skycore, Y's
			// surely failed.
			var calls sync.WaitGroup
			calls.Add(2)
			hs.h.d.Skycore = apiFunc(func(_ context.Context, _ string, r *sendreq.Request) (*skycore.Response, error) {
				calls.Done()
				calls.Wait()
				if r.ID == "lease-x" {
					return nil, &apperr.Error{Code: apperr.CodeTimeout, Class: apperr.Retry, Op: "skycore.SendSavedMMS", Message: "no answer"}
				}
				return nil, &apperr.Error{Code: "E503", Class: apperr.Retry, Op: "skycore.SendSavedMMS", Message: "busy"}
			})
			// Time for X's retrying (announceRetrying skips it otherwise).
			ctxA, cancelA := context.WithTimeout(context.Background(), RetryingPublishTimeout+RetryingLanding+time.Second)
			defer cancelA()
			ctxB, cancelB := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancelB()
			evX := record(t, "ma", `{"id":"lease-x","to":"17743199144","mmsId":1000}`, time.Now())
			evY := record(t, "mb", `{"id":"lease-y","to":"17743199145","mmsId":1000}`, time.Now())
			var wg sync.WaitGroup
			if tc.two {
				wg.Go(func() { hs.invoke(t, ctxA, evX) })
				wg.Go(func() { hs.invoke(t, ctxB, evY) })
			} else {
				evX.Records = append(evX.Records, evY.Records...)
				wg.Go(func() { hs.invoke(t, ctxA, evX) })
			}
			select {
			case <-slow.started:
			case <-time.After(5 * time.Second):
				close(slow.open)
				wg.Wait()
				t.Fatal("no event send started")
			}
			<-ctxA.Done()                     // A's deadline: its claim's lease is over
			time.Sleep(20 * time.Millisecond) // past it
			// Skycore did take X: its postback proves the acceptance.
			if status := deliver("N101", "TRK-LEASE-X", "lease-x"); status != 200 {
				t.Errorf("postback answered %d", status)
			}
			close(slow.open) // SQS answers again
			wg.Wait()
			if tc.outbox {
				slow.mu.Lock()
				batched := slices.Contains(slow.entries, 2)
				slow.mu.Unlock()
				if batched {
					t.Errorf("X's and Y's retrying events batched together (batches %v); want each alone", slow.entries)
				}
			}
			got := log.of("lease-x")
			t.Logf("lease-x events in publish order: %v", got)
			assertOneTerminalLast(t, got)
			if i := slices.Index(got, delivery.Retrying); i >= 0 && i == len(got)-1 {
				t.Errorf("events %v: retrying is the last word, published after its claim's lease ended", got)
			}
		})
	}
}

// TestOutboxLowConcurrencyNoDeadlock: SEND_CONCURRENCY below the
// batch size, with the outbox flushed only by the records' own progress
// (no Linger) and a rate limit: every record completes, once, and the
// events still go out in batches.
func TestOutboxLowConcurrencyNoDeadlock(t *testing.T) {
	hs := newHarness(t, nil, func(c *Config) { c.Concurrency, c.RatePerSecond = 2, 50 })
	hs.box.Linger = time.Hour
	ev := batchOf(t, "lowconc", 10)
	ev.Records[9].Body = `{"id":"lowconc-bad","to":"1","mmsId":1000}` // rejected: no call
	ev.Records[8].Body = `not json`                                   // malformed: DLQ, no event
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		hs.mustInvoke(t, ctx, ev, 0)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the batch did not complete: deadlock between the outbox and the concurrency limit")
	}
	got := hs.kinds(t)
	var want []string
	for i := range 8 {
		want = append(want, fmt.Sprintf("lowconc-%d:accepted:", i))
	}
	if len(got) != 9 || !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "lowconc-bad:rejected:") }) {
		t.Errorf("events = %v; want 8 accepted and lowconc-bad rejected", got)
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("missing %s in %v", w, got)
		}
	}
	for i := range 8 {
		if n := hs.sim.Counts().Received[fmt.Sprintf("lowconc-%d", i)]; n != 1 {
			t.Errorf("lowconc-%d sent %d times", i, n)
		}
	}
	if batches := hs.sqsCalls(localenv.EventQueue)["SendMessageBatch"]; batches < 1 {
		t.Errorf("no SendMessageBatch on the events queue")
	}
}
