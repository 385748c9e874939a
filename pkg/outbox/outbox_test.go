package outbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"
)

// fakeSQS records every call; refuse names bodies whose batch entry fails,
// down fails every call.
type fakeSQS struct {
	mu     sync.Mutex
	calls  []string // "SendMessage q body" or "SendMessageBatch q body,body"
	refuse map[string]bool
	drop   map[string]bool // bodies left out of the batch answer
	down   error
}

func (f *fakeSQS) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "SendMessage "+aws.ToString(in.QueueUrl)+" "+aws.ToString(in.MessageBody))
	if f.down != nil {
		return nil, f.down
	}
	return &sqs.SendMessageOutput{MessageId: aws.String("id-" + aws.ToString(in.MessageBody))}, nil
}

func (f *fakeSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var bodies []string
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		b := aws.ToString(e.MessageBody)
		bodies = append(bodies, b)
		switch {
		case f.drop[b]:
		case f.refuse[b]:
			out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), SenderFault: false})
		default:
			out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("id-" + b)})
		}
	}
	slices.Sort(bodies)
	f.calls = append(f.calls, "SendMessageBatch "+aws.ToString(in.QueueUrl)+" "+strings.Join(bodies, ","))
	if f.down != nil {
		return nil, f.down
	}
	return out, nil
}

func (f *fakeSQS) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

type result struct {
	body, messageID string
	err             error
}

// sendAll has n joined callers each send one message to q at once and
// leave; it returns each caller's result, in body order.
func sendAll(t *testing.T, o *Outbox, q string, bodies ...string) []result {
	t.Helper()
	ctx := t.Context()
	var joinedCtx []context.Context
	var leaves []func()
	for range bodies { // all join before any sends, as a batch's records do
		c, leave := o.Join(ctx)
		joinedCtx = append(joinedCtx, c)
		leaves = append(leaves, leave)
	}
	out := make([]result, len(bodies))
	var wg sync.WaitGroup
	for i, b := range bodies {
		wg.Go(func() {
			defer leaves[i]()
			r, err := o.SendMessage(joinedCtx[i], &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String(b)})
			out[i] = result{body: b, err: err}
			if r != nil {
				out[i].messageID = aws.ToString(r.MessageId)
			}
		})
	}
	wg.Wait()
	return out
}

func bodies(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("m%02d", i))
	}
	return out
}

func TestGroups(t *testing.T) {
	tests := []struct {
		name string
		n    int
		want []string
	}{
		{"one sends alone", 1, []string{"SendMessage q m00"}},
		{"ten in one batch", 10, []string{"SendMessageBatch q m00,m01,m02,m03,m04,m05,m06,m07,m08,m09"}},
		{"three", 3, []string{"SendMessageBatch q m00,m01,m02"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSQS{}
			o := New(f)
			o.Linger = time.Hour // only "everyone waits" may flush
			for _, r := range sendAll(t, o, "q", bodies(tt.n)...) {
				if r.err != nil || r.messageID != "id-"+r.body {
					t.Errorf("%s: message id %q, err %v; want its own id", r.body, r.messageID, r.err)
				}
			}
			if diff := cmp.Diff(tt.want, f.log()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

// More than ten callers: full batches go out as they fill, the rest when
// everyone waits; no message is in two calls, none is missing.
func TestMoreThanTen(t *testing.T) {
	f := &fakeSQS{}
	o := New(f)
	o.Linger = time.Hour
	all := bodies(23)
	for _, r := range sendAll(t, o, "q", all...) {
		if r.err != nil || r.messageID != "id-"+r.body {
			t.Errorf("%s: %q, %v", r.body, r.messageID, r.err)
		}
	}
	var sent []string
	for _, c := range f.log() {
		f := strings.Fields(c)
		if f[0] != "SendMessageBatch" && f[0] != "SendMessage" {
			t.Fatalf("call %q", c)
		}
		got := strings.Split(f[2], ",")
		if len(got) > MaxEntries {
			t.Errorf("a batch of %d", len(got))
		}
		sent = append(sent, got...)
	}
	slices.Sort(sent)
	if diff := cmp.Diff(all, sent); diff != "" {
		t.Errorf("messages sent (-want +got):\n%s", diff)
	}
	if n := len(f.log()); n > 4 {
		t.Errorf("%d calls for 23 messages; want at most 4: %v", n, f.log())
	}
}

// Each caller gets its own entry's outcome: a refused or missing entry is
// an error for that caller only, never a success.
func TestPartialFailure(t *testing.T) {
	f := &fakeSQS{refuse: map[string]bool{"m01": true}, drop: map[string]bool{"m03": true}}
	o := New(f)
	o.Linger = time.Hour
	for _, r := range sendAll(t, o, "q", bodies(5)...) {
		bad := r.body == "m01" || r.body == "m03"
		if bad != (r.err != nil) {
			t.Errorf("%s: err %v", r.body, r.err)
		}
		if !bad && r.messageID != "id-"+r.body {
			t.Errorf("%s: message id %q", r.body, r.messageID)
		}
	}
}

func TestCallFails(t *testing.T) {
	down := errors.New("connection refused")
	f := &fakeSQS{down: down}
	o := New(f)
	for _, r := range sendAll(t, o, "q", bodies(4)...) {
		if !errors.Is(r.err, down) {
			t.Errorf("%s: err %v, want the call's", r.body, r.err)
		}
	}
}

// A joined caller still at work (in a Skycore call, say) holds the others
// up until it sends, leaves, or Linger passes.
func TestWaitsForCallersAtWork(t *testing.T) {
	for _, tt := range []struct {
		name    string
		linger  time.Duration
		release func(o *Outbox, ctx context.Context, leave func())
		want    []string
	}{
		{"it leaves", time.Hour, func(_ *Outbox, _ context.Context, leave func()) { leave() },
			[]string{"SendMessageBatch q m00,m01"}},
		{"it sends too", time.Hour, func(o *Outbox, ctx context.Context, leave func()) {
			defer leave()
			o.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String("q"), MessageBody: aws.String("m02")})
		}, []string{"SendMessageBatch q m00,m01,m02"}},
		{"linger passes", 20 * time.Millisecond, nil, []string{"SendMessageBatch q m00,m01"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSQS{}
			o := New(f)
			o.Linger = tt.linger
			busyCtx, leaveBusy := o.Join(t.Context())
			defer leaveBusy()
			done := make(chan []result)
			go func() { done <- sendAll(t, o, "q", "m00", "m01") }()
			select {
			case <-done:
				if tt.release != nil {
					t.Fatal("sent while a joined caller was at work")
				}
			case <-time.After(200 * time.Millisecond):
				if tt.release == nil {
					t.Fatal("still waiting after Linger")
				}
				tt.release(o, busyCtx, leaveBusy)
				<-done
			}
			if diff := cmp.Diff(tt.want, f.log()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSentAtOnce(t *testing.T) {
	big := strings.Repeat("x", MaxEntryBytes+1)
	for _, tt := range []struct {
		name        string
		in          *sqs.SendMessageInput
		join, alone bool
	}{
		{"not joined", &sqs.SendMessageInput{QueueUrl: aws.String("q"), MessageBody: aws.String("a")}, false, false},
		{"too big to batch", &sqs.SendMessageInput{QueueUrl: aws.String("q"), MessageBody: aws.String(big)}, true, false},
		{"FIFO", &sqs.SendMessageInput{QueueUrl: aws.String("q.fifo"), MessageBody: aws.String("a"), MessageGroupId: aws.String("g")}, true, false},
		{"joined, sent alone", &sqs.SendMessageInput{QueueUrl: aws.String("q"), MessageBody: aws.String("a")}, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSQS{}
			o := New(f)
			o.Linger = time.Hour
			ctx := t.Context()
			if tt.join {
				var leave func()
				ctx, leave = o.Join(ctx)
				defer leave()
				_, leaveOther := o.Join(t.Context()) // at work: a batched send would wait
				defer leaveOther()
			}
			if tt.alone {
				ctx = o.Alone(ctx)
			}
			if _, err := o.SendMessage(ctx, tt.in); err != nil {
				t.Fatal(err)
			}
			if got := f.log(); len(got) != 1 || !strings.HasPrefix(got[0], "SendMessage ") {
				t.Errorf("calls = %.80q; want one SendMessage", got)
			}
		})
	}
}

// Messages for two queues go out in one batch each.
func TestQueuesApart(t *testing.T) {
	f := &fakeSQS{}
	o := New(f)
	o.Linger = time.Hour
	ctx := t.Context()
	var wg sync.WaitGroup
	var leaves []func()
	var ctxs []context.Context
	for range 4 {
		c, l := o.Join(ctx)
		ctxs, leaves = append(ctxs, c), append(leaves, l)
	}
	for i := range 4 {
		wg.Go(func() {
			defer leaves[i]()
			q := []string{"events", "receipts"}[i%2]
			if _, err := o.SendMessage(ctxs[i], &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String(fmt.Sprint(i))}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got := f.log()
	slices.Sort(got)
	if diff := cmp.Diff([]string{"SendMessageBatch events 0,2", "SendMessageBatch receipts 1,3"}, got); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

// Groups keep apart: callers of two groups (two invocations in one
// process) never share a batch call, and one group's caller at work does
// not hold the other group's sends up.
func TestGroupsApart(t *testing.T) {
	f := &fakeSQS{}
	o := New(f)
	o.Linger = time.Hour
	a, b := o.Group(t.Context()), o.Group(t.Context())
	_, leaveBusy := o.Join(a) // at work in group a
	defer leaveBusy()
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		var ctxs []context.Context
		var leaves []func()
		for range 3 { // all join before any sends
			ctx, leave := o.Join(b)
			ctxs, leaves = append(ctxs, ctx), append(leaves, leave)
		}
		for i := range 3 {
			ctx, leave := ctxs[i], leaves[i]
			wg.Go(func() {
				defer leave()
				if _, err := o.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String("q"), MessageBody: aws.String(fmt.Sprint("b", i))}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("group b waited for group a's caller")
	}
	if diff := cmp.Diff([]string{"SendMessageBatch q b0,b1,b2"}, f.log()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}
