package ops_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/ops"
)

// fakeSQS is SQS with a function per call; an unset one fails the call.
type fakeSQS struct {
	ReceiveMessageFn          func(*sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error)
	SendMessageFn             func(*sqs.SendMessageInput) (*sqs.SendMessageOutput, error)
	DeleteMessageFn           func(*sqs.DeleteMessageInput) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibilityFn func(*sqs.ChangeMessageVisibilityInput) (*sqs.ChangeMessageVisibilityOutput, error)
	GetQueueAttributesFn      func(*sqs.GetQueueAttributesInput) (*sqs.GetQueueAttributesOutput, error)
	StartMessageMoveTaskFn    func(*sqs.StartMessageMoveTaskInput) (*sqs.StartMessageMoveTaskOutput, error)
}

var errUnexpected = errors.New("unexpected call")

func (f *fakeSQS) ReceiveMessage(_ context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	if f.ReceiveMessageFn == nil {
		return nil, fmt.Errorf("ReceiveMessage: %w", errUnexpected)
	}
	return f.ReceiveMessageFn(in)
}

func (f *fakeSQS) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	if f.SendMessageFn == nil {
		return nil, fmt.Errorf("SendMessage: %w", errUnexpected)
	}
	return f.SendMessageFn(in)
}

func (f *fakeSQS) DeleteMessage(_ context.Context, in *sqs.DeleteMessageInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	if f.DeleteMessageFn == nil {
		return nil, fmt.Errorf("DeleteMessage: %w", errUnexpected)
	}
	return f.DeleteMessageFn(in)
}

func (f *fakeSQS) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	if f.ChangeMessageVisibilityFn == nil {
		return nil, fmt.Errorf("ChangeMessageVisibility: %w", errUnexpected)
	}
	return f.ChangeMessageVisibilityFn(in)
}

func (f *fakeSQS) GetQueueAttributes(_ context.Context, in *sqs.GetQueueAttributesInput, _ ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	if f.GetQueueAttributesFn == nil {
		return nil, fmt.Errorf("GetQueueAttributes: %w", errUnexpected)
	}
	return f.GetQueueAttributesFn(in)
}

func (f *fakeSQS) StartMessageMoveTask(_ context.Context, in *sqs.StartMessageMoveTaskInput, _ ...func(*sqs.Options)) (*sqs.StartMessageMoveTaskOutput, error) {
	if f.StartMessageMoveTaskFn == nil {
		return nil, fmt.Errorf("StartMessageMoveTask: %w", errUnexpected)
	}
	return f.StartMessageMoveTaskFn(in)
}

const (
	dlqURL  = "https://sqs.eu-west-1.amazonaws.com/123456789012/mmsgate-send-dlq"
	sendURL = "https://sqs.eu-west-1.amazonaws.com/123456789012/mmsgate-send"
)

// queueModel is a dead-letter queue behind fakeSQS's functions: a receive
// hides what it returns (with a new receipt handle) until a visibility of
// 0 or a delete; every call is logged.
type queueModel struct {
	msgs    []*modelMsg
	sent    []*sqs.SendMessageInput
	log     []string
	handles int
	failTo  string // SendMessage fails for this body
	// visibility is each receive's VisibilityTimeout.
	visibility []int32
}

type modelMsg struct {
	m      sqstypes.Message
	hidden bool
}

func newQueueModel(msgs ...sqstypes.Message) *queueModel {
	q := &queueModel{}
	for _, m := range msgs {
		q.msgs = append(q.msgs, &modelMsg{m: m})
	}
	return q
}

func (q *queueModel) fake() *fakeSQS {
	find := func(handle *string) *modelMsg {
		for _, m := range q.msgs {
			if aws.ToString(m.m.ReceiptHandle) == aws.ToString(handle) {
				return m
			}
		}
		return nil
	}
	return &fakeSQS{
		ReceiveMessageFn: func(in *sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error) {
			if aws.ToString(in.QueueUrl) != dlqURL {
				return nil, fmt.Errorf("receive from %s", aws.ToString(in.QueueUrl))
			}
			out := &sqs.ReceiveMessageOutput{}
			for _, m := range q.msgs {
				if !m.hidden && len(out.Messages) < int(in.MaxNumberOfMessages) {
					q.handles++
					// A visibility of a second or less is over before the next call.
					m.hidden, m.m.ReceiptHandle = in.VisibilityTimeout > 1, aws.String(fmt.Sprintf("rh-%d", q.handles))
					out.Messages = append(out.Messages, m.m)
				}
			}
			q.log = append(q.log, fmt.Sprintf("receive %d", len(out.Messages)))
			q.visibility = append(q.visibility, in.VisibilityTimeout)
			return out, nil
		},
		SendMessageFn: func(in *sqs.SendMessageInput) (*sqs.SendMessageOutput, error) {
			if aws.ToString(in.MessageBody) == q.failTo {
				q.log = append(q.log, "send failed")
				return nil, errors.New("AccessDenied")
			}
			q.sent = append(q.sent, in)
			q.log = append(q.log, "send "+peek(in.MessageBody))
			return &sqs.SendMessageOutput{MessageId: aws.String(fmt.Sprintf("new-%d", len(q.sent)))}, nil
		},
		DeleteMessageFn: func(in *sqs.DeleteMessageInput) (*sqs.DeleteMessageOutput, error) {
			for i, m := range q.msgs {
				if aws.ToString(m.m.ReceiptHandle) == aws.ToString(in.ReceiptHandle) {
					q.log = append(q.log, "delete "+peek(m.m.Body))
					q.msgs = append(q.msgs[:i], q.msgs[i+1:]...)
					return &sqs.DeleteMessageOutput{}, nil
				}
			}
			return nil, errors.New("ReceiptHandleIsInvalid")
		},
		ChangeMessageVisibilityFn: func(in *sqs.ChangeMessageVisibilityInput) (*sqs.ChangeMessageVisibilityOutput, error) {
			m := find(in.ReceiptHandle)
			if m == nil {
				return nil, errors.New("ReceiptHandleIsInvalid")
			}
			q.log = append(q.log, fmt.Sprintf("visible %s after %ds", peek(m.m.Body), in.VisibilityTimeout))
			m.hidden = in.VisibilityTimeout > 0
			return &sqs.ChangeMessageVisibilityOutput{}, nil
		},
		GetQueueAttributesFn: func(in *sqs.GetQueueAttributesInput) (*sqs.GetQueueAttributesOutput, error) {
			u := aws.ToString(in.QueueUrl)
			name := u[strings.LastIndex(u, "/")+1:]
			visible, hidden := 0, 0
			for _, m := range q.msgs {
				if m.hidden {
					hidden++
				} else {
					visible++
				}
			}
			return &sqs.GetQueueAttributesOutput{Attributes: map[string]string{"QueueArn": "arn:aws:sqs:eu-west-1:123456789012:" + name,
				"ApproximateNumberOfMessages": strconv.Itoa(visible), "ApproximateNumberOfMessagesNotVisible": strconv.Itoa(hidden)}}, nil
		},
	}
}

// peek is the id in a test body.
func peek(body *string) string {
	var v struct{ ID string }
	json.Unmarshal([]byte(aws.ToString(body)), &v)
	if v.ID == "" {
		return "?"
	}
	return v.ID
}

func str(v string) sqstypes.MessageAttributeValue {
	return sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
}

// deadLetters are the two ways a body reaches the DLQ, and a body that is
// not JSON at all.
func deadLetters() []sqstypes.Message {
	return []sqstypes.Message{
		{MessageId: aws.String("m-1"), Body: aws.String(`{"id":"order-1","to":"17743199144","mmsId":1000,"extra":1}`),
			Attributes: map[string]string{"SentTimestamp": "1795683600000", "ApproximateReceiveCount": "1"},
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{
				"error": str("E100: unknown field extra"), "originalMessageId": str("orig-1"),
				"mmsgate-handoff": str(`{"t":"X"}`), "mmsgate-handoff-mac": str("ab12"), "tenant": str("acme"),
			}},
		{MessageId: aws.String("m-2"), Body: aws.String(`{"id":"order-2","to":"17743199144","mmsId":1000}`),
			Attributes: map[string]string{"SentTimestamp": "1795683660000", "ApproximateReceiveCount": "5",
				"DeadLetterQueueSourceArn": "arn:aws:sqs:eu-west-1:123456789012:mmsgate-send"}},
		{MessageId: aws.String("m-3"), Body: aws.String(`not json`),
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{"error": str("body is not JSON"), "originalMessageId": str("orig-3")}},
	}
}

func TestRedriveDryRunChangesNothing(t *testing.T) {
	q := newQueueModel(deadLetters()...)
	f := newFixture(t)
	f.sqs = q.fake()
	out, errOut, code := f.run(t, "redrive", "--dlq", dlqURL, "--to", sendURL, "--dry-run")
	if code != 0 {
		t.Fatalf("redrive --dry-run = exit %d; stderr:\n%s", code, errOut)
	}
	if len(q.sent) != 0 || len(q.msgs) != 3 {
		t.Errorf("dry run sent %d and left %d of 3 messages", len(q.sent), len(q.msgs))
	}
	for _, m := range q.msgs {
		if m.hidden {
			t.Errorf("dry run left %s hidden", aws.ToString(m.m.MessageId))
		}
	}
	// One receive, hiding each message for a second only; no other call.
	if diff := cmp.Diff([]string{"receive 3"}, q.log); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int32{1}, q.visibility); diff != "" {
		t.Errorf("receive visibility (-want +got):\n%s", diff)
	}
	golden(t, "redrive/dry_run.txt", out)
}

func TestRedriveDryRunMax(t *testing.T) {
	q := newQueueModel(deadLetters()...)
	res, err := ops.Redrive(context.Background(), q.fake(), nil, ops.RedriveOptions{DLQ: dlqURL, To: sendURL, DryRun: true, Max: 2, Wait: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range res.Messages {
		ids = append(ids, d.ID)
	}
	if diff := cmp.Diff([]string{"order-1", "order-2"}, ids); diff != "" {
		t.Errorf("listed (-want +got):\n%s", diff)
	}
	for _, m := range q.msgs {
		if m.hidden {
			t.Errorf("dry run left %s hidden", aws.ToString(m.m.MessageId))
		}
	}
}

func TestRedriveReasons(t *testing.T) {
	q := newQueueModel(deadLetters()...)
	res, err := ops.Redrive(context.Background(), q.fake(), nil, ops.RedriveOptions{DLQ: dlqURL, To: sendURL, DryRun: true, Wait: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []ops.Dead{
		{MessageID: "m-1", ID: "order-1", Reason: "E100: unknown field extra", Error: "E100: unknown field extra", OriginalMessageID: "orig-1",
			ReceiveCount: 1, SentAt: "2026-11-26T09:00:00.000Z", Bytes: 58, Verdict: ops.VerdictUnknown, Note: "no table to read"},
		{MessageID: "m-2", ID: "order-2", Reason: "the redrive policy of mmsgate-send (received maxReceiveCount times without success)",
			Source: "arn:aws:sqs:eu-west-1:123456789012:mmsgate-send", ReceiveCount: 5, SentAt: "2026-11-26T09:01:00.000Z", Bytes: 48,
			Verdict: ops.VerdictUnknown, Note: "no table to read"},
		{MessageID: "m-3", Reason: "body is not JSON", Error: "body is not JSON", OriginalMessageID: "orig-3", Bytes: 8, Verdict: ops.VerdictNoID},
	}
	if diff := cmp.Diff(want, res.Messages); diff != "" {
		t.Errorf("messages (-want +got):\n%s", diff)
	}
}

func TestRedriveMoves(t *testing.T) {
	q := newQueueModel(deadLetters()...)
	f := newFixture(t)
	f.sqs = q.fake()
	out, errOut, code := f.run(t, "redrive", "--dlq", dlqURL, "--to", sendURL)
	// The body that is not JSON stays: the sender could only dead-letter it again.
	if code != ops.ExitFailure || !strings.Contains(errOut, "1 message(s) kept on the dead-letter queue") {
		t.Fatalf("redrive = exit %d; stderr:\n%s", code, errOut)
	}
	// Each one is sent before it is deleted; the kept one is visible again at the end.
	want := []string{"receive 3", "send order-1", "delete order-1", "send order-2", "delete order-2", "receive 0", "visible ? after 0s"}
	if diff := cmp.Diff(want, q.log); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if len(q.msgs) != 1 || q.msgs[0].hidden || aws.ToString(q.msgs[0].m.MessageId) != "m-3" {
		t.Errorf("left on the DLQ: %v, want m-3, visible", q.msgs)
	}
	for i, in := range q.sent {
		if got, want := aws.ToString(in.MessageBody), aws.ToString(deadLetters()[i].Body); got != want || aws.ToString(in.QueueUrl) != sendURL {
			t.Errorf("sent %q to %s, want %q to %s", got, aws.ToString(in.QueueUrl), want, sendURL)
		}
	}
	// Only the application's attribute goes back.
	var names []string
	for name := range q.sent[0].MessageAttributes {
		names = append(names, name)
	}
	if diff := cmp.Diff([]string{"tenant"}, names); diff != "" {
		t.Errorf("attributes copied (-want +got):\n%s", diff)
	}
	if q.sent[1].MessageAttributes != nil {
		t.Errorf("attributes on a message that had none: %v", q.sent[1].MessageAttributes)
	}
	golden(t, "redrive/move.txt", out)
}

// TestRedriveToItsSourceOnly: a body the redrive policy of the bulk queue
// moved (into the transactional DLQ, before the bulk lane had its own)
// goes back to the bulk queue only; the sender's own dead letters name no
// source and go where --to says.
func TestRedriveToItsSourceOnly(t *testing.T) {
	const bulkURL = "https://sqs.eu-west-1.amazonaws.com/123456789012/mmsgate-bulk-send"
	bulk := deadLetters()[1]
	bulk.MessageId, bulk.Body = aws.String("m-4"), aws.String(`{"id":"bulk-4","to":"17743199144","mmsId":1000}`)
	bulk.Attributes = map[string]string{"ApproximateReceiveCount": "5", "DeadLetterQueueSourceArn": "arn:aws:sqs:eu-west-1:123456789012:mmsgate-bulk-send"}
	q := newQueueModel(append(deadLetters()[:2], bulk)...)

	res, err := ops.Redrive(context.Background(), q.fake(), nil, ops.RedriveOptions{DLQ: dlqURL, To: sendURL, Wait: -1}, nil)
	if err != nil || res.Moved != 2 || res.Kept != 1 {
		t.Fatalf("Redrive --to the send queue = %+v, %v; want 2 moved, 1 kept", res, err)
	}
	if d := res.Messages[2]; d.ID != "bulk-4" || d.Moved || d.Note != "kept: it came from mmsgate-bulk-send, not mmsgate-send; --to that queue's URL moves it back" {
		t.Errorf("the bulk body: %+v", d)
	}
	if len(q.msgs) != 1 || q.msgs[0].hidden {
		t.Fatalf("left on the DLQ: %v, want the bulk body, visible", q.msgs)
	}

	res, err = ops.Redrive(context.Background(), q.fake(), nil, ops.RedriveOptions{DLQ: dlqURL, To: bulkURL, Wait: -1}, nil)
	if err != nil || res.Moved != 1 || res.Kept != 0 || len(q.msgs) != 0 {
		t.Fatalf("Redrive --to the bulk queue = %+v, %v; left %v", res, err, q.msgs)
	}
	var got []string
	for _, in := range q.sent {
		got = append(got, peek(in.MessageBody)+" → "+aws.ToString(in.QueueUrl))
	}
	want := []string{"order-1 → " + sendURL, "order-2 → " + sendURL, "bulk-4 → " + bulkURL}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sent (-want +got):\n%s", diff)
	}

	// A target whose ARN cannot be read moves nothing.
	q2 := newQueueModel(deadLetters()[0])
	f2 := q2.fake()
	f2.GetQueueAttributesFn = func(*sqs.GetQueueAttributesInput) (*sqs.GetQueueAttributesOutput, error) {
		return nil, errors.New("AccessDenied")
	}
	if _, err := ops.Redrive(context.Background(), f2, nil, ops.RedriveOptions{DLQ: dlqURL, To: sendURL, Wait: -1}, nil); err == nil || len(q2.sent) != 0 {
		t.Errorf("Redrive with an unreadable target = %v, sent %d; want an error, nothing sent", err, len(q2.sent))
	}
}

func TestRedriveMax(t *testing.T) {
	q := newQueueModel(deadLetters()...)
	res, err := ops.Redrive(context.Background(), q.fake(), nil, ops.RedriveOptions{DLQ: dlqURL, To: sendURL, Max: 2, Wait: -1}, nil)
	if err != nil || res.Moved != 2 {
		t.Fatalf("Redrive --max 2 = %+v, %v", res, err)
	}
	if len(q.msgs) != 1 || aws.ToString(q.msgs[0].m.MessageId) != "m-3" || q.msgs[0].hidden {
		t.Errorf("left on the DLQ: %v", q.msgs)
	}
}

func TestRedriveFailedSendDeletesNothing(t *testing.T) {
	q := newQueueModel(deadLetters()...)
	q.failTo = aws.ToString(deadLetters()[1].Body)
	f := newFixture(t)
	f.sqs = q.fake()
	_, errOut, code := f.run(t, "redrive", "--dlq", dlqURL, "--to", sendURL)
	if code != ops.ExitFailure || !strings.Contains(errOut, "send m-2 to "+sendURL+" (it stays on the dead-letter queue): AccessDenied") {
		t.Fatalf("redrive with a failing send = exit %d; stderr:\n%s", code, errOut)
	}
	want := []string{"receive 3", "send order-1", "delete order-1", "send failed", "visible order-2 after 0s", "visible ? after 0s"}
	if diff := cmp.Diff(want, q.log); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if len(q.msgs) != 2 {
		t.Errorf("%d messages left on the DLQ, want 2", len(q.msgs))
	}
}

func TestRedriveFailedDelete(t *testing.T) {
	q := newQueueModel(deadLetters()[:1]...)
	fake := q.fake()
	fake.DeleteMessageFn = func(*sqs.DeleteMessageInput) (*sqs.DeleteMessageOutput, error) { return nil, errors.New("throttled") }
	res, err := ops.Redrive(context.Background(), fake, nil, ops.RedriveOptions{DLQ: dlqURL, To: sendURL, Wait: -1}, nil)
	if err == nil || !strings.Contains(err.Error(), "a later run sends it again") || res.Moved != 1 {
		t.Errorf("Redrive with a failing delete = %+v, %v; want the send counted and the duplicate explained", res, err)
	}
}

// A message SQS delivers twice in one run is sent once.
func TestRedriveDuplicateDelivery(t *testing.T) {
	msg := deadLetters()[1]
	calls := 0
	var sent, deleted int
	fake := &fakeSQS{
		ReceiveMessageFn: func(*sqs.ReceiveMessageInput) (*sqs.ReceiveMessageOutput, error) {
			calls++
			if calls > 2 {
				return &sqs.ReceiveMessageOutput{}, nil
			}
			m := msg
			m.ReceiptHandle = aws.String(fmt.Sprintf("rh-%d", calls))
			return &sqs.ReceiveMessageOutput{Messages: []sqstypes.Message{m}}, nil
		},
		SendMessageFn: func(*sqs.SendMessageInput) (*sqs.SendMessageOutput, error) {
			sent++
			return &sqs.SendMessageOutput{MessageId: aws.String("n")}, nil
		},
		DeleteMessageFn: func(*sqs.DeleteMessageInput) (*sqs.DeleteMessageOutput, error) {
			deleted++
			return &sqs.DeleteMessageOutput{}, nil
		},
		GetQueueAttributesFn: func(*sqs.GetQueueAttributesInput) (*sqs.GetQueueAttributesOutput, error) {
			return &sqs.GetQueueAttributesOutput{Attributes: map[string]string{"QueueArn": "arn:aws:sqs:eu-west-1:123456789012:mmsgate-send"}}, nil
		},
	}
	res, err := ops.Redrive(context.Background(), fake, nil, ops.RedriveOptions{DLQ: dlqURL, To: sendURL, Wait: -1}, nil)
	if err != nil || res.Moved != 1 || sent != 1 || deleted != 2 {
		t.Errorf("Redrive = %+v, %v; sent %d, deleted %d; want 1 move, 1 send, 2 deletes", res, err, sent, deleted)
	}
}

func TestRedriveNative(t *testing.T) {
	q := newQueueModel(deadLetters()...)
	fake := q.fake()
	var got *sqs.StartMessageMoveTaskInput
	fake.StartMessageMoveTaskFn = func(in *sqs.StartMessageMoveTaskInput) (*sqs.StartMessageMoveTaskOutput, error) {
		got = in
		return &sqs.StartMessageMoveTaskOutput{TaskHandle: aws.String("task-1")}, nil
	}
	f := newFixture(t)
	f.sqs = fake
	out, errOut, code := f.run(t, "redrive", "--dlq", dlqURL, "--to", sendURL, "--native", "--rate", "50", "--json")
	if code != 0 {
		t.Fatalf("redrive --native = exit %d; stderr:\n%s", code, errOut)
	}
	want := &sqs.StartMessageMoveTaskInput{SourceArn: aws.String("arn:aws:sqs:eu-west-1:123456789012:mmsgate-send-dlq"),
		DestinationArn: aws.String("arn:aws:sqs:eu-west-1:123456789012:mmsgate-send"), MaxNumberOfMessagesPerSecond: aws.Int32(50)}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(sqs.StartMessageMoveTaskInput{})); diff != "" {
		t.Errorf("StartMessageMoveTask (-want +got):\n%s", diff)
	}
	if len(q.log) != 0 || len(q.msgs) != 3 {
		t.Errorf("--native touched the messages itself: %v", q.log)
	}
	var res ops.RedriveResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.TaskHandle != "task-1" || !res.Native {
		t.Errorf("--json = %+v, %v:\n%s", res, err, out)
	}
}

// The region of an AWS queue URL is used when none is given.
func TestRedriveRegionFromQueueURL(t *testing.T) {
	var got ops.Global
	q := newQueueModel()
	cli := &ops.CLI{Stdout: &strings.Builder{}, Stderr: &strings.Builder{},
		Connect: func(_ context.Context, g ops.Global) (*ops.Clients, error) {
			got = g
			return &ops.Clients{SQS: q.fake()}, nil
		}}
	if code := cli.Run(context.Background(), []string{"redrive", "--dlq", dlqURL, "--to", sendURL, "--dry-run"}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if got.Region != "eu-west-1" {
		t.Errorf("region = %q, want eu-west-1 from the queue URL", got.Region)
	}
}

// TestRedriveKeepsSignedHandoff: a hand-off dead-lettered with its signed
// attributes goes back with them (the sender checks the signature and
// records the acceptance instead of sending again); an unsigned or
// malformed one, and every other mmsgate-* attribute, is dropped.
func TestRedriveKeepsSignedHandoff(t *testing.T) {
	mac := strings.Repeat("0a", 32)
	msg := func(id string, attrs map[string]sqstypes.MessageAttributeValue) sqstypes.Message {
		return sqstypes.Message{MessageId: aws.String("m-" + id), Body: aws.String(`{"id":"` + id + `","to":"17743199144","mmsId":1000}`),
			MessageAttributes: attrs}
	}
	q := newQueueModel(
		msg("signed-1", map[string]sqstypes.MessageAttributeValue{"error": str("accepted by Skycore … but not recorded"),
			"mmsgate-handoff": str(`{"t":"T1","first":1}`), "mmsgate-handoff-mac": str(mac), "mmsgate-other": str("x")}),
		msg("junk-1", map[string]sqstypes.MessageAttributeValue{"mmsgate-handoff": str(`{"t":"T2"}`), "mmsgate-handoff-mac": str("ab12")}),
		msg("nomac-1", map[string]sqstypes.MessageAttributeValue{"mmsgate-handoff": str(`{"t":"T3"}`)}),
	)
	res, err := ops.Redrive(context.Background(), q.fake(), nil, ops.RedriveOptions{DLQ: dlqURL, To: sendURL, Wait: -1}, nil)
	if err != nil || res.Moved != 3 {
		t.Fatalf("redrive = %+v, %v; want 3 moved", res, err)
	}
	got := map[string][]string{}
	for _, in := range q.sent {
		var names []string
		for name := range in.MessageAttributes {
			names = append(names, name)
		}
		sort.Strings(names)
		got[peek(in.MessageBody)] = names
	}
	want := map[string][]string{"signed-1": {"mmsgate-handoff", "mmsgate-handoff-mac"}, "junk-1": nil, "nomac-1": nil}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("attributes sent back, by id (-want +got):\n%s", diff)
	}
	if v := q.sent[0].MessageAttributes["mmsgate-handoff-mac"].StringValue; peek(q.sent[0].MessageBody) == "signed-1" && aws.ToString(v) != mac {
		t.Errorf("signature sent back = %q, want it unchanged", aws.ToString(v))
	}
}
