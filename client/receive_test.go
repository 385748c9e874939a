package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/client"
)

// inbox is a fakeSQS events queue holding bodies; a message stays until
// it is deleted, and each ReceiveMessage returns every message left.
type inbox struct {
	mu      sync.Mutex
	bodies  map[string]string // receipt handle → body
	order   []string
	deleted []string
	fake    fakeSQS
	waits   []int32
}

func newInbox(bodies ...string) *inbox {
	in := &inbox{bodies: map[string]string{}}
	for i, b := range bodies {
		h := string(rune('a' + i))
		in.bodies[h] = b
		in.order = append(in.order, h)
	}
	in.fake.ReceiveMessageFn = func(_ context.Context, r *sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error) {
		in.mu.Lock()
		defer in.mu.Unlock()
		in.waits = append(in.waits, r.WaitTimeSeconds)
		out := &sqs.ReceiveMessageOutput{}
		for _, h := range in.order {
			if b, ok := in.bodies[h]; ok {
				out.Messages = append(out.Messages, sqstypes.Message{MessageId: aws.String("m-" + h), ReceiptHandle: aws.String(h), Body: aws.String(b)})
			}
		}
		return out, nil
	}
	in.fake.DeleteMessageFn = func(ctx context.Context, r *sqs.DeleteMessageInput) (*sqs.DeleteMessageOutput, error) {
		if err := ctx.Err(); err != nil {
			return nil, err // as the SDK does
		}
		in.mu.Lock()
		defer in.mu.Unlock()
		h := aws.ToString(r.ReceiptHandle)
		delete(in.bodies, h)
		in.deleted = append(in.deleted, h)
		return &sqs.DeleteMessageOutput{}, nil
	}
	return in
}

func TestReceiverPoll(t *testing.T) {
	t.Parallel()
	bodies := []string{
		`{"id":"ok-1","event":"accepted","trackingId":"T1"}`,
		`{"id":"boom","event":"delivered"}`, // the handler fails
		`not json`,
		`{"id":"new","event":"opened"}`,
		`{"id":"ok-2","event":"rejected","code":"E110"}`,
	}
	handler := func(seen *[]string) client.Handler {
		return func(_ context.Context, e client.Event) error {
			*seen = append(*seen, e.ID+" "+e.Event)
			if e.ID == "boom" {
				return errors.New("database down")
			}
			return nil
		}
	}
	tests := []struct {
		name        string
		undecodable func(context.Context, string, error) error
		wantDeleted []string
		wantFailed  []string // MessageError.MessageID
		wantN       int
	}{
		{name: "undecodable kept", wantDeleted: []string{"a", "e"}, wantFailed: []string{"m-b", "m-c", "m-d"}, wantN: 2},
		{name: "undecodable dropped", undecodable: func(context.Context, string, error) error { return nil },
			wantDeleted: []string{"a", "c", "d", "e"}, wantFailed: []string{"m-b"}, wantN: 4},
		{name: "undecodable refused", undecodable: func(context.Context, string, error) error { return errors.New("keep") },
			wantDeleted: []string{"a", "e"}, wantFailed: []string{"m-b", "m-c", "m-d"}, wantN: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := newInbox(bodies...)
			r := &client.Receiver{API: &in.fake, QueueURL: "events", Wait: 1500 * time.Millisecond, Undecodable: tt.undecodable}
			var seen []string
			n, err := r.Poll(t.Context(), handler(&seen))
			if n != tt.wantN {
				t.Errorf("Poll handled %d, want %d", n, tt.wantN)
			}
			var failed []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var me *client.MessageError
				if !errors.As(e, &me) {
					t.Fatalf("Poll error %v is not a *MessageError", e)
				}
				failed = append(failed, me.MessageID)
			}
			if diff := cmp.Diff(tt.wantFailed, failed); diff != "" {
				t.Errorf("failed messages (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantDeleted, in.deleted); diff != "" {
				t.Errorf("deleted (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"ok-1 accepted", "boom delivered", "ok-2 rejected"}, seen); diff != "" {
				t.Errorf("handled (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]int32{2}, in.waits); diff != "" {
				t.Errorf("WaitTimeSeconds, rounded up (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReceiverPollErrors(t *testing.T) {
	t.Parallel()
	t.Run("receive fails", func(t *testing.T) {
		t.Parallel()
		down := errors.New("down")
		r := &client.Receiver{API: &fakeSQS{ReceiveMessageFn: func(context.Context, *sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error) {
			return nil, down
		}}}
		if n, err := r.Poll(t.Context(), nil); n != 0 || !errors.Is(err, down) {
			t.Errorf("Poll = %d, %v; want 0, %v", n, err, down)
		}
	})
	t.Run("delete fails", func(t *testing.T) {
		t.Parallel()
		in := newInbox(`{"id":"a","event":"sent"}`)
		in.fake.DeleteMessageFn = func(context.Context, *sqs.DeleteMessageInput) (*sqs.DeleteMessageOutput, error) {
			return nil, errors.New("gone")
		}
		r := &client.Receiver{API: &in.fake, QueueURL: "events"}
		n, err := r.Poll(t.Context(), func(context.Context, client.Event) error { return nil })
		var me *client.MessageError
		if n != 0 || !errors.As(err, &me) || me.EventID != "a" {
			t.Errorf("Poll = %d, %v; want 0 and a *MessageError for id a", n, err)
		}
		if in.waits[0] != 20 {
			t.Errorf("WaitTimeSeconds = %d, want the default 20", in.waits[0])
		}
	})
}

func TestReceiverRun(t *testing.T) {
	t.Parallel()
	in := newInbox(`{"id":"a","event":"accepted"}`, `junk`, `{"id":"b","event":"delivered"}`)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var got []string
	var errs []error
	r := &client.Receiver{API: &in.fake, QueueURL: "events",
		OnError: func(_ context.Context, err error) { errs = append(errs, err) }}
	err := r.Run(ctx, func(_ context.Context, e client.Event) error {
		got = append(got, e.ID)
		if e.ID == "b" {
			cancel() // stop after the first poll; b is deleted all the same
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if diff := cmp.Diff([]string{"a", "b"}, got); diff != "" {
		t.Errorf("handled (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a", "c"}, in.deleted); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
	if len(errs) != 1 || !errors.Is(errs[0], client.ErrNotEvent) {
		t.Errorf("OnError got %v, want one ErrNotEvent", errs)
	}

	t.Run("stops when receive fails", func(t *testing.T) {
		down := errors.New("down")
		r := &client.Receiver{API: &fakeSQS{ReceiveMessageFn: func(context.Context, *sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error) {
			return nil, down
		}}}
		if err := r.Run(t.Context(), nil); !errors.Is(err, down) {
			t.Errorf("Run = %v, want %v", err, down)
		}
	})
}
