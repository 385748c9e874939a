package client_test

import (
	"context"
	"errors"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/client"
)

// fakeSQS is an SQS client whose calls are the functions a test sets; a
// call with no function set fails.
type fakeSQS struct {
	SendMessageFn      func(ctx context.Context, in *sqs.SendMessageInput) (*sqs.SendMessageOutput, error)
	SendMessageBatchFn func(ctx context.Context, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error)
	ReceiveMessageFn   func(ctx context.Context, in *sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageFn    func(ctx context.Context, in *sqs.DeleteMessageInput) (*sqs.DeleteMessageOutput, error)
}

var (
	_ client.SendAPI    = (*fakeSQS)(nil)
	_ client.ReceiveAPI = (*fakeSQS)(nil)
)

var errUnexpected = errors.New("fakeSQS: unexpected call")

func (f *fakeSQS) SendMessage(ctx context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if f.SendMessageFn == nil {
		return nil, errUnexpected
	}
	return f.SendMessageFn(ctx, in)
}

func (f *fakeSQS) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	if f.SendMessageBatchFn == nil {
		return nil, errUnexpected
	}
	return f.SendMessageBatchFn(ctx, in)
}

func (f *fakeSQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	if f.ReceiveMessageFn == nil {
		return nil, errUnexpected
	}
	return f.ReceiveMessageFn(ctx, in)
}

func (f *fakeSQS) DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	if f.DeleteMessageFn == nil {
		return nil, errUnexpected
	}
	return f.DeleteMessageFn(ctx, in)
}

// queue is a fakeSQS send queue that keeps every body it accepts and every
// SendMessageBatch call's entry count. refuse maps a batch entry id to the
// failure SQS answers for it.
type queue struct {
	mu     sync.Mutex
	bodies []string
	calls  []int // entries per SendMessageBatch call; -1 for SendMessage
	refuse map[string]sqstypes.BatchResultErrorEntry
	fake   fakeSQS
}

func newQueue() *queue {
	q := &queue{}
	q.fake.SendMessageFn = func(_ context.Context, in *sqs.SendMessageInput) (*sqs.SendMessageOutput, error) {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.calls = append(q.calls, -1)
		q.bodies = append(q.bodies, aws.ToString(in.MessageBody))
		return &sqs.SendMessageOutput{MessageId: aws.String("m" + strconv.Itoa(len(q.bodies)))}, nil
	}
	q.fake.SendMessageBatchFn = func(_ context.Context, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.calls = append(q.calls, len(in.Entries))
		out := &sqs.SendMessageBatchOutput{}
		for _, e := range in.Entries {
			if f, ok := q.refuse[aws.ToString(e.Id)]; ok {
				f.Id = e.Id
				out.Failed = append(out.Failed, f)
				continue
			}
			q.bodies = append(q.bodies, aws.ToString(e.MessageBody))
			out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("m" + strconv.Itoa(len(q.bodies)))})
		}
		return out, nil
	}
	return q
}
