package sender

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/internal/localenv"
)

// What the tests see of the queues goes through the SQS API (moto, or
// fakesqs under -short) and the fault proxy in front of it, never through
// a stand-in's own Go API.

// enqueue puts a request on the send queue as an application does.
func (hs *harness) enqueue(t *testing.T, body string) {
	t.Helper()
	if _, err := hs.env.SendTo(context.Background(), localenv.SendQueue, body, nil); err != nil {
		t.Fatal(err)
	}
}

// receive takes up to n messages off the send queue, hiding them for hide,
// as the event source mapping does.
func (hs *harness) receive(t *testing.T, n int, hide time.Duration) []types.Message {
	t.Helper()
	var out []types.Message
	for len(out) < n {
		r, err := hs.env.SQSClient().ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(hs.env.SendQueueURL),
			MaxNumberOfMessages: int32(min(n-len(out), 10)), VisibilityTimeout: int32(hide / time.Second), MessageAttributeNames: []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Messages) == 0 {
			break
		}
		out = append(out, r.Messages...)
	}
	return out
}

// drain takes every message off a queue, and fails the test if one is
// left hidden or delayed, out of a receive's reach: the handler's own
// messages are sent visible, so the queue must hold what drain returns.
func (hs *harness) drain(t *testing.T, queue string) []types.Message {
	t.Helper()
	msgs, err := hs.env.Drain(context.Background(), queue)
	if err != nil {
		t.Fatal(err)
	}
	if n := hs.held(t, queue); n != 0 {
		t.Errorf("%s: %d messages hidden or delayed besides the %d drained", queue, n, len(msgs))
	}
	return msgs
}

// peek reads every visible message of a queue and leaves it there.
func (hs *harness) peek(t *testing.T, queue string) []types.Message {
	t.Helper()
	msgs, err := hs.env.Peek(context.Background(), queue)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// held is how many messages of a queue are in flight or delayed: hidden
// from a receive.
func (hs *harness) held(t *testing.T, queue string) int {
	t.Helper()
	c, err := hs.env.QueueCounts(context.Background(), hs.env.URL(queue))
	if err != nil {
		t.Fatal(err)
	}
	return c.InFlight + c.Delayed
}

// hiddenFor is the visibility timeout the handler last set on the message
// of receipt (as the fault proxy in front of SQS saw it, answered 2xx),
// and whether it set one.
func (hs *harness) hiddenFor(t *testing.T, receipt *string) (time.Duration, bool) {
	t.Helper()
	var d time.Duration
	found := false
	for _, r := range hs.env.SQSFaults.Recorded("ChangeMessageVisibility") {
		if r.Caller != handlerApp {
			continue // the harness's own (Peek)
		}
		var c struct {
			ReceiptHandle     string
			VisibilityTimeout int
		}
		if err := json.Unmarshal(r.Body, &c); err != nil {
			t.Fatal(err)
		}
		if c.ReceiptHandle == aws.ToString(receipt) {
			d, found = time.Duration(c.VisibilityTimeout)*time.Second, true
		}
	}
	return d, found
}

// handlerApp is the application id of the handler's SQS client: the
// fault proxy counts its calls apart from the harness's.
const handlerApp = "send-mms"

// sqsCalls counts the handler's SQS requests on queue by operation.
func (hs *harness) sqsCalls(queue string) map[string]int64 {
	out := map[string]int64{}
	for c, u := range hs.env.SQSFaults.SQSCalls() {
		if c.Queue == queue && c.Caller == handlerApp {
			out[c.Op] += u.Requests
		}
	}
	return out
}

// fromQueue turns a message the handler put on a queue into the record a
// later invocation would get.
func fromQueue(t *testing.T, m types.Message) events.SQSEvent {
	sent, _ := strconv.ParseInt(m.Attributes["SentTimestamp"], 10, 64)
	ev := record(t, aws.ToString(m.MessageId), aws.ToString(m.Body), time.UnixMilli(sent))
	ev.Records[0].MessageAttributes = map[string]events.SQSMessageAttribute{}
	for k, a := range m.MessageAttributes {
		ev.Records[0].MessageAttributes[k] = events.SQSMessageAttribute{DataType: aws.ToString(a.DataType), StringValue: a.StringValue}
	}
	return ev
}

// errorAttr is a dead letter's error attribute ("" when it has none).
func errorAttr(m types.Message) string {
	return aws.ToString(m.MessageAttributes["error"].StringValue)
}
