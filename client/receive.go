package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// ReceiveAPI is the part of the SQS client that Receiver uses;
// *sqs.Client has it.
type ReceiveAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
}

var _ ReceiveAPI = (*sqs.Client)(nil)

// deleteTimeout bounds the DeleteMessage of a handled event, which outlives
// a cancelled ctx.
const deleteTimeout = 10 * time.Second

// Handler handles one delivery event. Returning nil deletes its message;
// an error leaves it on the queue, to be received again after the queue's
// visibility timeout (events are delivered at least once: handle an event
// twice without harm).
type Handler func(ctx context.Context, e Event) error

// Receiver long-polls the delivery-events queue (DELIVERY_EVENTS_QUEUE_URL),
// decodes each message with DecodeEvent and deletes it once its Handler
// returns nil.
type Receiver struct {
	API      ReceiveAPI
	QueueURL string
	// Wait is the long-poll wait of one ReceiveMessage (0: 20 s, SQS's
	// longest).
	Wait time.Duration
	// Undecodable is called for a message DecodeEvent rejects; returning
	// nil deletes the message. When nil, such a message stays on the queue
	// (for its redrive policy) and counts as a failure.
	Undecodable func(ctx context.Context, body string, err error) error
	// OnError is told of each message Run could not handle (it stays on
	// the queue); nil ignores them.
	OnError func(ctx context.Context, err error)
}

// MessageError is a message Poll could not handle; it stays on the queue.
type MessageError struct {
	MessageID string // SQS's id of the message
	EventID   string // the event's id, when it decoded
	Err       error
}

func (e *MessageError) Error() string {
	return fmt.Sprintf("message %s (id %q): %v", e.MessageID, e.EventID, e.Err)
}

func (e *MessageError) Unwrap() error { return e.Err }

// Poll receives once (up to 10 messages, waiting up to Wait) and hands each
// event to h in the order received. It returns how many messages were
// handled and deleted, and either the ReceiveMessage error or every
// message's failure joined (each a *MessageError).
func (r *Receiver) Poll(ctx context.Context, h Handler) (int, error) {
	n, failed, err := r.poll(ctx, h)
	if err != nil {
		return 0, err
	}
	return n, errors.Join(failed...)
}

// Run polls until ctx is done, then returns ctx's error. It stops early
// only when ReceiveMessage fails, returning that error; failures of single
// messages go to OnError and do not stop it.
func (r *Receiver) Run(ctx context.Context, h Handler) error {
	for ctx.Err() == nil {
		_, failed, err := r.poll(ctx, h)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return err
		}
		if r.OnError != nil {
			for _, f := range failed {
				r.OnError(ctx, f)
			}
		}
	}
	return ctx.Err()
}

func (r *Receiver) poll(ctx context.Context, h Handler) (handled int, failed []error, err error) {
	wait := r.Wait
	if wait <= 0 {
		wait = 20 * time.Second
	}
	out, err := r.API.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(r.QueueURL),
		MaxNumberOfMessages: 10,
		WaitTimeSeconds:     int32((wait + time.Second - 1) / time.Second),
	})
	if err != nil {
		return 0, nil, fmt.Errorf("receive delivery events: %w", err)
	}
	for _, m := range out.Messages {
		if err := r.handle(ctx, h, m); err != nil {
			failed = append(failed, err)
			continue
		}
		handled++
	}
	return handled, failed, nil
}

func (r *Receiver) handle(ctx context.Context, h Handler, m sqstypes.Message) error {
	body := aws.ToString(m.Body)
	e, err := DecodeEvent([]byte(body))
	fail := func(err error) error {
		return &MessageError{MessageID: aws.ToString(m.MessageId), EventID: e.ID, Err: err}
	}
	switch {
	case err != nil && r.Undecodable == nil:
		return fail(err)
	case err != nil:
		if err := r.Undecodable(ctx, body, err); err != nil {
			return fail(err)
		}
	default:
		if err := h(ctx, e); err != nil {
			return fail(err)
		}
	}
	// The event is handled: delete it even when ctx was cancelled meanwhile
	// (a shutdown), or it would be handled again.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
	defer cancel()
	if _, err := r.API.DeleteMessage(dctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(r.QueueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
		return fail(fmt.Errorf("delete: %w", err))
	}
	return nil
}
