package localenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/pkg/delivery"
)

// What works through the SQS and Secrets Manager APIs alone, so with moto
// and with our stand-ins alike.

// createResources creates the queues (the send queue redriving to its
// DLQ) and the secret; both are idempotent, as CreateQueue is.
func (e *Env) createResources(ctx context.Context, o Options) error {
	q := e.SQSClient()
	create := func(name string, vis time.Duration, attrs map[string]string) (string, error) {
		if attrs == nil {
			attrs = map[string]string{}
		}
		attrs["VisibilityTimeout"] = strconv.Itoa(int(vis / time.Second))
		attrs["MaximumMessageSize"] = "262144" // 256 KiB, as mmsgate assumes (pkg/sender's size.go)
		out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
		if err != nil {
			return "", fmt.Errorf("create queue %s: %w", name, err)
		}
		return *out.QueueUrl, nil
	}
	var err error
	if e.DLQURL, err = create(SendDLQ, 30*time.Second, map[string]string{"MessageRetentionPeriod": "1209600"}); err != nil {
		return err
	}
	arn, err := e.QueueARN(ctx, e.DLQURL)
	if err != nil {
		return err
	}
	if e.SendQueueURL, err = create(SendQueue, o.Visibility, map[string]string{
		"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, arn, o.MaxReceive)}); err != nil {
		return err
	}
	if e.BulkDLQURL, err = create(BulkSendDLQ, 30*time.Second, map[string]string{"MessageRetentionPeriod": "1209600"}); err != nil {
		return err
	}
	if arn, err = e.QueueARN(ctx, e.BulkDLQURL); err != nil {
		return err
	}
	if e.BulkSendQueueURL, err = create(BulkSendQueue, o.Visibility, map[string]string{
		"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, arn, o.MaxReceive)}); err != nil {
		return err
	}
	if e.EventsQueueURL, err = create(EventQueue, 30*time.Second, nil); err != nil {
		return err
	}
	if e.ReceiptQueueURL, err = create(ReceiptQueue, time.Minute, nil); err != nil {
		return err
	}
	return e.createSecret(ctx, o)
}

// QueueARN is a queue's ARN (GetQueueAttributes QueueArn).
func (e *Env) QueueARN(ctx context.Context, url string) (string, error) {
	out, err := e.SQSClient().GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		return "", err
	}
	return out.Attributes["QueueArn"], nil
}

// Counts are a queue's approximate counters.
type Counts struct {
	Visible, InFlight, Delayed int
}

// Total is every message the queue holds.
func (c Counts) Total() int { return c.Visible + c.InFlight + c.Delayed }

// QueueCounts reads a queue's counters through GetQueueAttributes.
func (e *Env) QueueCounts(ctx context.Context, url string) (Counts, error) {
	out, err := e.SQSClient().GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
	if err != nil {
		return Counts{}, err
	}
	n := func(k string) int { v, _ := strconv.Atoi(out.Attributes[k]); return v }
	return Counts{Visible: n("ApproximateNumberOfMessages"), InFlight: n("ApproximateNumberOfMessagesNotVisible"),
		Delayed: n("ApproximateNumberOfMessagesDelayed")}, nil
}

// URL is a local queue's URL by name.
func (e *Env) URL(name string) string {
	switch name {
	case SendQueue:
		return e.SendQueueURL
	case SendDLQ:
		return e.DLQURL
	case BulkSendQueue:
		return e.BulkSendQueueURL
	case BulkSendDLQ:
		return e.BulkDLQURL
	case EventQueue:
		return e.EventsQueueURL
	case ReceiptQueue:
		return e.ReceiptQueueURL
	}
	return ""
}

// Received is one message as ReceiveMessage returns it.
type Received = types.Message

// ReceiveAll takes every visible message of a queue, hiding each for
// hide, oldest first. Each receive counts toward the queue's redrive; with
// hide 0 the same messages may come back and end the walk early, so hide
// should outlast the call (0 suits a queue of at most 10).
func (e *Env) ReceiveAll(ctx context.Context, url string, hide time.Duration) ([]Received, error) {
	q := e.SQSClient()
	seen := map[string]bool{}
	var out []Received
	for {
		r, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			VisibilityTimeout: int32(hide / time.Second), MessageAttributeNames: []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}})
		if err != nil {
			return out, err
		}
		fresh := 0
		for _, m := range r.Messages {
			if !seen[*m.MessageId] {
				seen[*m.MessageId] = true
				out = append(out, m)
				fresh++
			}
		}
		if fresh == 0 {
			break
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return sentAt(out[i]) < sentAt(out[j]) })
	return out, nil
}

func sentAt(m Received) int64 {
	v, _ := strconv.ParseInt(m.Attributes["SentTimestamp"], 10, 64)
	return v
}

// Delete deletes received messages (DeleteMessageBatch, 10 at a time).
func (e *Env) Delete(ctx context.Context, url string, msgs []Received) error {
	for i := 0; i < len(msgs); i += 10 {
		var entries []types.DeleteMessageBatchRequestEntry
		for j, m := range msgs[i:min(i+10, len(msgs))] {
			entries = append(entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(j)), ReceiptHandle: m.ReceiptHandle})
		}
		out, err := e.SQSClient().DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
		if err != nil {
			return err
		}
		if len(out.Failed) > 0 {
			return fmt.Errorf("delete: %s", aws.ToString(out.Failed[0].Message))
		}
	}
	return nil
}

// DecodeEvent checks and decodes one delivery event message.
func DecodeEvent(m Received) (delivery.Event, error) {
	var ev delivery.Event
	if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ev); err != nil {
		return ev, fmt.Errorf("event %s: %w", aws.ToString(m.MessageId), err)
	}
	if a, ok := m.MessageAttributes["event"]; !ok || aws.ToString(a.StringValue) != ev.Event {
		return ev, fmt.Errorf("event %s: attribute event does not match %q", aws.ToString(m.MessageId), ev.Event)
	}
	return ev, nil
}

// SendTo puts one message on a local queue, by name.
func (e *Env) SendTo(ctx context.Context, name, body string, attrs map[string]types.MessageAttributeValue) (string, error) {
	in := &sqs.SendMessageInput{QueueUrl: aws.String(e.URL(name)), MessageBody: aws.String(body)}
	if len(attrs) > 0 {
		in.MessageAttributes = attrs
	}
	out, err := e.SQSClient().SendMessage(ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.MessageId), nil
}

// Drain takes every visible message off a local queue, oldest first. What
// it received is deleted even when a later receive fails; an error means
// the queue may still hold some of what was returned.
func (e *Env) Drain(ctx context.Context, name string) ([]Received, error) {
	msgs, err := e.ReceiveAll(ctx, e.URL(name), 5*time.Minute)
	return msgs, errors.Join(err, e.Delete(ctx, e.URL(name), msgs))
}

// Peek returns every visible message of a local queue, oldest first, and
// leaves them visible. Each is received once more (its receive count
// grows), so Peek suits queues nothing redrives, such as the DLQ.
func (e *Env) Peek(ctx context.Context, name string) ([]Received, error) {
	msgs, err := e.ReceiveAll(ctx, e.URL(name), 5*time.Minute)
	if err != nil {
		return msgs, err
	}
	for _, m := range msgs {
		if _, err := e.SQSClient().ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(e.URL(name)),
			ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
			return msgs, err
		}
	}
	return msgs, nil
}

func tableExists(err error) bool {
	return err != nil && strings.Contains(err.Error(), "ResourceInUseException")
}

// saved is one message kept across a restart (make dev PERSIST=1).
type saved struct {
	Queue      string                                 `json:"queue"`
	Body       string                                 `json:"body"`
	Attributes map[string]types.MessageAttributeValue `json:"attributes,omitempty"`
}

// SaveQueues takes every message off the send, bulk, DLQ and event queues (in flight ones
// included once they are visible again: call it after the pollers stop)
// and writes them to file. moto keeps queues in memory only.
func (e *Env) SaveQueues(ctx context.Context, file string) (int, error) {
	var all []saved
	for _, name := range []string{SendQueue, SendDLQ, BulkSendQueue, BulkSendDLQ, EventQueue} {
		msgs, err := e.ReceiveAll(ctx, e.URL(name), 5*time.Minute)
		if err != nil {
			return 0, err
		}
		for _, m := range msgs {
			all = append(all, saved{Queue: name, Body: aws.ToString(m.Body), Attributes: m.MessageAttributes})
		}
	}
	b, _ := json.MarshalIndent(all, "", " ")
	return len(all), os.WriteFile(file, b, 0o644)
}

// LoadQueues puts back what SaveQueues wrote (receive counts start again).
func (e *Env) LoadQueues(ctx context.Context, file string) (int, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var all []saved
	if err := json.Unmarshal(b, &all); err != nil {
		return 0, fmt.Errorf("%s: %w", file, err)
	}
	for _, m := range all {
		if _, err := e.SendTo(ctx, m.Queue, m.Body, m.Attributes); err != nil {
			return 0, err
		}
	}
	return len(all), os.Remove(file)
}
