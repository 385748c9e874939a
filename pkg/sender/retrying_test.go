package sender

// retrying never lands after accepted: its publication ends while the
// claim still holds the postback off, or it is skipped (docs/events.md,
// "Bounded noise").

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/metric"
	"github.com/mmsgate/mmsgate/pkg/outbox"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// lateSQS is the events queue as the sender reaches it while SQS takes a
// retrying event but answers too late: the send waits until its caller
// gives up, and the message lands `landing` after that (SQS had it).
// Other messages go through. log records each message as it lands.
type lateSQS struct {
	inner   *sqs.Client
	landing time.Duration
	log     *orderLog
	late    sync.WaitGroup
	held    atomic.Int32 // retrying sends caught in flight
}

func (l *lateSQS) landed(in *sqs.SendMessageInput) {
	var e delivery.Event
	if json.Unmarshal([]byte(aws.ToString(in.MessageBody)), &e) == nil {
		l.log.mu.Lock()
		l.log.evs = append(l.log.evs, e)
		l.log.mu.Unlock()
	}
}

func (l *lateSQS) SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if !strings.Contains(aws.ToString(in.MessageBody), `"event":"retrying"`) {
		out, err := l.inner.SendMessage(ctx, in, opts...)
		if err == nil {
			l.landed(in)
		}
		return out, err
	}
	l.held.Add(1)
	<-ctx.Done()
	l.late.Go(func() {
		time.Sleep(l.landing)
		if _, err := l.inner.SendMessage(context.Background(), in); err == nil {
			l.landed(in)
		}
	})
	return nil, ctx.Err()
}

func (l *lateSQS) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	out := &sqs.SendMessageBatchOutput{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, e := range in.Entries {
		wg.Go(func() {
			_, err := l.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: in.QueueUrl, MessageBody: e.MessageBody, MessageAttributes: e.MessageAttributes})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError")})
				return
			}
			out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("m")})
		})
	}
	wg.Wait()
	return out, nil
}

// timingOut is Skycore taking every call of the test and answering none
// in time (in doubt); it counts the calls, and closes called (when not
// nil) at the first.
func timingOut(calls *atomic.Int32, called chan struct{}) apiFunc {
	return func(context.Context, string, *sendreq.Request) (*skycore.Response, error) {
		if calls.Add(1) == 1 && called != nil {
			close(called)
		}
		return nil, &apperr.Error{Code: apperr.CodeTimeout, Class: apperr.Retry, Op: "skycore.SendSavedMMS", Message: "no answer"}
	}
}

// TestRetryingNeverAfterAccepted: the call times out (in doubt), but
// Skycore took it, and its postback (with CLIENT_REFERENCE) keeps coming
// during the sender's batch; SQS takes the sender's retrying event but
// answers only after the sender gave up on it, and it lands a moment
// later. Whatever the time left in the invocation (the claim's lease), the
// events as they land on the queue end with accepted: retrying is
// published and answered before the claim is given back, or the claim is
// given back only once it can no longer land, or it is skipped.
func TestRetryingNeverAfterAccepted(t *testing.T) {
	// It waits on leases and windows: overlap it with the others.
	t.Parallel()
	for _, tc := range []struct {
		name    string
		left    time.Duration // the invocation's time: the claim's lease
		want    []string      // the events as they land
		skipped int           // RetryingSkipped counted
	}{
		// Time to publish it and see it land before the lease ends: the
		// publication is cut at its own deadline, the id given back once
		// the unanswered event can no longer land.
		{"time to publish", RetryingPublishTimeout + RetryingLanding + 2*time.Second, []string{delivery.Retrying, delivery.Accepted}, 0},
		// Too little: skipped, counted.
		{"too little time", RetryingPublishTimeout + RetryingLanding/2, []string{delivery.Accepted}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHarness(t, nil, func(c *Config) { c.InDoubtWindow = time.Minute })
			log := &orderLog{}
			late := &lateSQS{inner: hs.env.SQSClient(), landing: RetryingLanding * 3 / 4, log: log}
			box := outbox.New(late) // as functions/send-mms wires it
			hs.h.d.Outbox, hs.h.d.Events = box, delivery.NewPublisher(box, hs.env.EventsQueueURL)
			var calls atomic.Int32
			called := make(chan struct{})
			hs.h.d.Skycore = timingOut(&calls, called)
			// The postback function in its own process: SQS answers it.
			deliver := postbackTo(t, hs, &attackLog{inner: delivery.NewPublisher(hs.env.SQSClient(), hs.env.EventsQueueURL), orderLog: log})
			id := "late-" + strings.ReplaceAll(tc.name, " ", "-")

			ctx, cancel := context.WithTimeout(context.Background(), tc.left)
			defer cancel()
			done := make(chan struct{})
			go func() {
				defer close(done)
				hs.invoke(t, ctx, record(t, "m", fmt.Sprintf(`{"id":%q,"to":"17743199144","mmsId":1000}`, id), time.Now()))
			}()
			// Skycore's postback, once it has the call, retried until
			// answered 200 (it answers 503 while the claim is held).
			select {
			case <-called:
			case <-done:
				t.Fatal("no Skycore call")
			}
			accepted := false
			for stop := time.Now().Add(tc.left + 10*time.Second); !accepted && time.Now().Before(stop); {
				accepted = deliver("N101", "TRK-"+id, id) == 200
				if !accepted {
					time.Sleep(20 * time.Millisecond)
				}
			}
			<-done
			late.late.Wait() // every retrying SQS took has landed
			if !accepted {
				t.Fatal("the postback was never answered 200")
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("Skycore called %d times, want 1", n)
			}
			got := log.of(id)
			var send []string // the send events, as they landed
			for _, e := range got {
				if e == delivery.Retrying || delivery.Terminal(e) {
					send = append(send, e)
				}
			}
			if !slices.Equal(send, tc.want) {
				t.Errorf("send events as they landed: %v (all: %v), want %v", send, got, tc.want)
			}
			assertOneTerminalLast(t, got)
			if n := strings.Count(hs.logs.String(), `"`+metric.RetryingSkipped+`":1`); n != tc.skipped {
				t.Errorf("RetryingSkipped counted %d times, want %d", n, tc.skipped)
			}
			m, err := store.New(hs.db, localenv.Table, 0).Get(context.Background(), id)
			if err != nil || m == nil || m.State != store.StateAccepted || m.AcceptedBy != "postback" {
				t.Errorf("record %+v, %v; want accepted by the postback", m, err)
			}
		})
	}
}

// crashAfter is the real store, except that the record's goroutine dies
// (runtime.Goexit through crashAt) when it is about to give its claim back.
type crashAfter struct{ *crashAt }

func (c crashAfter) Doubt(ctx context.Context, id, owner string, until time.Time, o store.Outcome) (bool, error) {
	c.crash("give back")
	return c.Store.Doubt(ctx, id, owner, until, o)
}

func (c crashAfter) Release(ctx context.Context, id, owner string, o store.Outcome) (bool, error) {
	c.crash("give back")
	return c.Store.Release(ctx, id, owner, o)
}

// TestRetryingCrashBeforeGiveBack: the sender publishes retrying, then
// dies before the write that gives its claim back. Until its lease ends the
// postback is answered 503; after it the next delivery finds the id in
// doubt and does not send it again; the postback then records the
// acceptance, after retrying, and the next delivery ends the record's
// message without a second call.
func TestRetryingCrashBeforeGiveBack(t *testing.T) {
	// It waits on leases and windows: overlap it with the others.
	t.Parallel()
	hs := newHarness(t, nil, func(c *Config) { c.InDoubtWindow = time.Minute })
	log := newAttackLog(hs.h.d.Events)
	hs.h.d.Events = log
	st := crashAfter{&crashAt{Store: store.New(hs.db, localenv.Table, 0), at: "give back"}}
	hs.h.d.Store = st
	var calls atomic.Int32
	hs.h.d.Skycore = timingOut(&calls, nil)
	deliver := postbackTo(t, hs, log)
	body := `{"id":"crash-give-back","to":"17743199144","mmsId":1000}`
	left := RetryingPublishTimeout + RetryingLanding + time.Second
	ctx, cancel := context.WithTimeout(context.Background(), left)
	defer cancel()
	hs.invoke(t, ctx, record(t, "m", body, time.Now()))
	if !st.crashed.Load() {
		t.Fatal("no crash")
	}
	if got := log.of("crash-give-back"); !slices.Equal(got, []string{delivery.Retrying}) {
		t.Fatalf("events before the crash: %v, want retrying", got)
	}
	if status := deliver("N101", "TRK-CRASH", "crash-give-back"); status != 503 {
		t.Errorf("postback under the dead sender's live claim answered %d, want 503", status)
	}
	dl, _ := ctx.Deadline()
	time.Sleep(time.Until(dl) + 50*time.Millisecond) // the dead sender's lease is over

	// The next taker: in doubt, not sent again.
	hs.mustInvoke(t, context.Background(), record(t, "m", body, time.Now()), 1)
	if n := calls.Load(); n != 1 {
		t.Fatalf("Skycore called %d times after the crash, want 1", n)
	}
	if status := deliver("N101", "TRK-CRASH", "crash-give-back"); status != 200 {
		t.Fatalf("postback answered %d", status)
	}
	hs.mustInvoke(t, context.Background(), record(t, "m", body, time.Now()), 0)
	if n := calls.Load(); n != 1 {
		t.Errorf("Skycore called %d times, want 1", n)
	}
	got := log.of("crash-give-back")
	if !slices.Equal(got, []string{delivery.Retrying, delivery.Accepted, delivery.Sent}) {
		t.Errorf("events %v, want retrying, accepted, sent", got)
	}
	m, err := st.Get(context.Background(), "crash-give-back")
	if err != nil || m == nil || m.State != store.StateAccepted {
		t.Errorf("record %+v, %v; want accepted", m, err)
	}
}
