package ops

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/pkg/sendreq"
)

// queues is the part of SQS that Redrive uses.
type queues interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, opts ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	StartMessageMoveTask(ctx context.Context, in *sqs.StartMessageMoveTaskInput, opts ...func(*sqs.Options)) (*sqs.StartMessageMoveTaskOutput, error)
}

var _ queues = (*sqs.Client)(nil)

// RedriveOptions says what to move where.
type RedriveOptions struct {
	DLQ, To string // queue URLs
	DryRun  bool   // list what would move; change nothing
	Max     int    // move at most this many (0: all)
	// Native starts SQS's own move task (StartMessageMoveTask) instead of
	// moving message by message; Rate is its MaxNumberOfMessagesPerSecond
	// (0: SQS's default).
	Native bool
	Rate   int
	// Wait is the long poll of each receive: an empty receive ends the
	// run (default 1 s; tests use 0).
	Wait time.Duration
	// Visibility hides each received message for this long while it is
	// moved, or while a dry run lists the queue (default 2 min).
	Visibility time.Duration
}

// Dead is one dead-letter message and why it is there.
type Dead struct {
	MessageID         string `json:"messageId"`
	ID                string `json:"id"`     // the request's id, when its body has a usable one
	Reason            string `json:"reason"` // the error attribute, or what moved it
	Error             string `json:"error"`  // the sender's error attribute, "" when the redrive policy moved it
	OriginalMessageID string `json:"originalMessageId"`
	Source            string `json:"source"` // DeadLetterQueueSourceArn: the queue whose redrive policy moved it
	ReceiveCount      int    `json:"receiveCount"`
	SentAt            string `json:"sentAt"`
	Bytes             int    `json:"bytes"`
	Moved             bool   `json:"moved"`
	NewMessageID      string `json:"newMessageId"` // on the target queue
}

// RedriveResult is what a run did.
type RedriveResult struct {
	DryRun     bool   `json:"dryRun"`
	Native     bool   `json:"native"`
	Moved      int    `json:"moved"`
	TaskHandle string `json:"taskHandle"` // Native: the move task, for aws sqs list-message-move-tasks
	SourceARN  string `json:"sourceArn"`
	Messages   []Dead `json:"messages"`
	// StillHidden counts dry-run messages whose visibility could not be
	// given back: they reappear when Visibility ends.
	StillHidden int    `json:"stillHidden"`
	Error       string `json:"error"`
}

// The sender's dead-letter attributes (pkg/sender deadLetter): they say why
// a body is on the DLQ and are not copied back.
const (
	attrError    = "error"
	attrOriginal = "originalMessageId"
)

// copyAttribute reports whether a message attribute goes back to the send
// queue: not the dead-letter reasons, and never one of mmsgate's own
// (mmsgate-*, such as a signed hand-off).
func copyAttribute(name string) bool {
	return name != attrError && name != attrOriginal && !strings.HasPrefix(strings.ToLower(name), "mmsgate-")
}

// Redrive moves dead-letter messages back to the send queue, or lists them
// (DryRun). each, when not nil, sees every message as it is handled.
//
// The portable mode receives from the DLQ, sends the same body to To, then
// deletes it from the DLQ: at least once. A run that dies between the send
// and the delete leaves the message on both queues, and the next run moves
// it again; the sender's idempotency on id absorbs that. A failed send
// deletes nothing and stops the run.
func Redrive(ctx context.Context, q queues, o RedriveOptions, each func(Dead)) (*RedriveResult, error) {
	if o.Wait == 0 {
		o.Wait = time.Second
	}
	if o.Wait < 0 {
		o.Wait = 0
	}
	if o.Visibility <= 0 {
		o.Visibility = 2 * time.Minute
	}
	if each == nil {
		each = func(Dead) {}
	}
	res := &RedriveResult{DryRun: o.DryRun, Native: o.Native && !o.DryRun, Messages: []Dead{}}
	switch {
	case o.DryRun:
		return res, dryRun(ctx, q, o, res, each)
	case o.Native:
		return res, native(ctx, q, o, res)
	}
	return res, move(ctx, q, o, res, each)
}

func receive(ctx context.Context, q queues, o RedriveOptions, n int) ([]sqstypes.Message, error) {
	out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(o.DLQ), MaxNumberOfMessages: int32(n),
		WaitTimeSeconds: int32(o.Wait / time.Second), VisibilityTimeout: int32(o.Visibility / time.Second),
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameAll},
	})
	if err != nil {
		return nil, fmt.Errorf("receive from the dead-letter queue: %w", err)
	}
	return out.Messages, nil
}

// batch is how many to receive next: at most 10, at most what Max leaves.
func batch(o RedriveOptions, done int) int {
	n := 10
	if o.Max > 0 && o.Max-done < n {
		n = o.Max - done
	}
	return n
}

// dryRun receives every message once, keeping each hidden until the
// listing is done (so that the next receive returns new ones), then makes
// them all visible again at once.
func dryRun(ctx context.Context, q queues, o RedriveOptions, res *RedriveResult, each func(Dead)) (err error) {
	seen := map[string]bool{}
	var handles []string
	defer func() {
		// Give the visibility back even when ctx was cancelled.
		restore := context.WithoutCancel(ctx)
		for _, h := range handles {
			if _, cerr := q.ChangeMessageVisibility(restore, &sqs.ChangeMessageVisibilityInput{
				QueueUrl: aws.String(o.DLQ), ReceiptHandle: aws.String(h), VisibilityTimeout: 0,
			}); cerr != nil {
				res.StillHidden++
			}
		}
	}()
	for o.Max == 0 || len(res.Messages) < o.Max {
		msgs, err := receive(ctx, q, o, batch(o, len(res.Messages)))
		if err != nil {
			return err
		}
		fresh := 0
		for _, m := range msgs {
			handles = append(handles, aws.ToString(m.ReceiptHandle))
			if seen[aws.ToString(m.MessageId)] {
				continue
			}
			seen[aws.ToString(m.MessageId)] = true
			fresh++
			d := describe(m)
			res.Messages = append(res.Messages, d)
			each(d)
		}
		if fresh == 0 { // empty, or only messages seen already: the whole queue was listed
			return nil
		}
	}
	return nil
}

func move(ctx context.Context, q queues, o RedriveOptions, res *RedriveResult, each func(Dead)) error {
	moved := map[string]bool{} // SQS may deliver a message twice: send it once
	for o.Max == 0 || res.Moved < o.Max {
		msgs, err := receive(ctx, q, o, batch(o, res.Moved))
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			return nil
		}
		for i, m := range msgs {
			d := describe(m)
			if !moved[d.MessageID] {
				out, err := q.SendMessage(ctx, sendInput(o.To, m))
				if err != nil {
					// Nothing deleted: show this one and the rest of the batch again.
					unhide(ctx, q, o.DLQ, msgs[i:])
					return fmt.Errorf("send %s to %s (it stays on the dead-letter queue): %w", d.MessageID, o.To, err)
				}
				moved[d.MessageID] = true
				d.Moved, d.NewMessageID = true, aws.ToString(out.MessageId)
				res.Moved++
				res.Messages = append(res.Messages, d)
				each(d)
			}
			if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(o.DLQ), ReceiptHandle: m.ReceiptHandle}); err != nil {
				unhide(ctx, q, o.DLQ, msgs[i+1:])
				return fmt.Errorf("delete %s from the dead-letter queue after sending it (a later run sends it again; the sender ignores the duplicate): %w", d.MessageID, err)
			}
		}
	}
	return nil
}

func unhide(ctx context.Context, q queues, url string, msgs []sqstypes.Message) {
	ctx = context.WithoutCancel(ctx)
	for _, m := range msgs {
		// Best effort: otherwise they reappear when the visibility ends.
		q.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0})
	}
}

// sendInput is the message for the send queue: the same body, and the
// attributes an application put on it, without the dead-letter reasons
// and mmsgate's own.
func sendInput(to string, m sqstypes.Message) *sqs.SendMessageInput {
	in := &sqs.SendMessageInput{QueueUrl: aws.String(to), MessageBody: m.Body}
	for name, v := range m.MessageAttributes {
		if !copyAttribute(name) {
			continue
		}
		if in.MessageAttributes == nil {
			in.MessageAttributes = map[string]sqstypes.MessageAttributeValue{}
		}
		in.MessageAttributes[name] = sqstypes.MessageAttributeValue{DataType: v.DataType, StringValue: v.StringValue, BinaryValue: v.BinaryValue}
	}
	if strings.HasSuffix(to, ".fifo") {
		if g := m.Attributes[string(sqstypes.MessageSystemAttributeNameMessageGroupId)]; g != "" {
			in.MessageGroupId = aws.String(g)
		}
		if d := m.Attributes[string(sqstypes.MessageSystemAttributeNameMessageDeduplicationId)]; d != "" {
			in.MessageDeduplicationId = aws.String(d)
		}
	}
	return in
}

// describe says what a dead-letter message is and why it is there.
func describe(m sqstypes.Message) Dead {
	body := aws.ToString(m.Body)
	d := Dead{MessageID: aws.ToString(m.MessageId), ID: sendreq.PeekID([]byte(body)), Bytes: len(body),
		Error: attr(m, attrError), OriginalMessageID: attr(m, attrOriginal),
		Source: m.Attributes[string(sqstypes.MessageSystemAttributeNameDeadLetterQueueSourceArn)]}
	d.ReceiveCount, _ = strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
	if ms, err := strconv.ParseInt(m.Attributes[string(sqstypes.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil && ms > 0 {
		d.SentAt = stamp(time.UnixMilli(ms))
	}
	switch {
	case d.Error != "":
		d.Reason = d.Error
	case d.Source != "":
		d.Reason = "the redrive policy of " + queueName(d.Source) + " (received maxReceiveCount times without success)"
	default:
		d.Reason = "no reason recorded (no error attribute)"
	}
	return d
}

func attr(m sqstypes.Message, name string) string {
	if v, ok := m.MessageAttributes[name]; ok {
		return aws.ToString(v.StringValue)
	}
	return ""
}

// queueName is the last part of a queue ARN or URL.
func queueName(s string) string {
	if i := strings.LastIndexAny(s, ":/"); i >= 0 {
		return s[i+1:]
	}
	return s
}

func native(ctx context.Context, q queues, o RedriveOptions, res *RedriveResult) error {
	if o.Max > 0 {
		return errors.New("--max does not apply to --native (SQS moves every message; use --rate to slow it)")
	}
	src, err := queueARN(ctx, q, o.DLQ)
	if err != nil {
		return err
	}
	dst, err := queueARN(ctx, q, o.To)
	if err != nil {
		return err
	}
	in := &sqs.StartMessageMoveTaskInput{SourceArn: aws.String(src), DestinationArn: aws.String(dst)}
	if o.Rate > 0 {
		in.MaxNumberOfMessagesPerSecond = aws.Int32(int32(o.Rate))
	}
	out, err := q.StartMessageMoveTask(ctx, in)
	if err != nil {
		return fmt.Errorf("start the message move task: %w", err)
	}
	res.SourceARN, res.TaskHandle = src, aws.ToString(out.TaskHandle)
	return nil
}

func queueARN(ctx context.Context, q queues, url string) (string, error) {
	out, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return "", fmt.Errorf("read the ARN of %s: %w", url, err)
	}
	arn := out.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	if arn == "" {
		return "", fmt.Errorf("read the ARN of %s: no QueueArn", url)
	}
	return arn, nil
}
