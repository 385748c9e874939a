package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/store"
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

// messages reads a request's record (pkg/store's msg#<id>): whether its id
// is final decides what a redrive can do with its body.
type messages interface {
	Get(ctx context.Context, id string) (*store.Message, error)
}

var _ messages = (*store.Store)(nil)

// RedriveOptions says what to move where.
type RedriveOptions struct {
	DLQ, To string // queue URLs
	DryRun  bool   // list what would move; change nothing
	Max     int    // move at most this many (0: all)
	// Renew sends the body of a request whose id is final (expired or
	// rejected) under a new id derived from it (RenewID), with
	// metadata.renewedFrom set; without it such a body stays on the DLQ.
	Renew bool
	// Native starts SQS's own move task (StartMessageMoveTask) instead of
	// moving message by message; Rate is its MaxNumberOfMessagesPerSecond
	// (0: SQS's default).
	Native bool
	Rate   int
	// Wait is the long poll of each receive: an empty receive ends the
	// run (default peekVisibility plus a second, so that a run right after
	// a dry run still sees what the dry run hid; tests use 0).
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
	// Verdict is what a redrive does with it, from its record in the table:
	// VerdictRevivable (no record, or not final: the sender takes it up),
	// VerdictFinal (the sender would ignore it: --renew sends it under
	// RenewAs), VerdictNoID (no valid id: the sender can never process it)
	// or VerdictUnknown (the table could not be read: moved as it is).
	Verdict      string `json:"verdict"`
	State        string `json:"state"`   // the record's state, "" without a record
	RenewAs      string `json:"renewAs"` // VerdictFinal: the id --renew gives it ("" when it cannot be renewed)
	Note         string `json:"note"`    // why it was kept, or what the table said
	Moved        bool   `json:"moved"`
	Renewed      bool   `json:"renewed"`      // moved under RenewAs
	NewMessageID string `json:"newMessageId"` // on the target queue
}

// Verdicts of a dead-letter message (Dead.Verdict).
const (
	VerdictRevivable = "revivable"
	VerdictFinal     = "final"
	VerdictNoID      = "no valid id"
	VerdictUnknown   = "unknown"
)

// RedriveResult is what a run did.
type RedriveResult struct {
	DryRun  bool `json:"dryRun"`
	Native  bool `json:"native"`
	Moved   int  `json:"moved"`
	Renewed int  `json:"renewed"` // of Moved, sent under a new id
	Kept    int  `json:"kept"`    // left on the DLQ: final (without --renew), no valid id, or another queue's
	// Listed is how many messages the dry run saw, Approximate how many SQS
	// said the DLQ held when it began (-1: unknown).
	Approximate int    `json:"approximate"`
	TaskHandle  string `json:"taskHandle"` // Native: the move task, for aws sqs list-message-move-tasks
	SourceARN   string `json:"sourceArn"`
	Messages    []Dead `json:"messages"`
	Error       string `json:"error"`
}

// The sender's dead-letter attributes (pkg/sender deadLetter): they say why
// a body is on the DLQ and are not copied back.
const (
	attrError    = "error"
	attrOriginal = "originalMessageId"
)

// copyAttribute reports whether a message attribute goes back to the send
// queue as it is: not the dead-letter reasons, and never one of mmsgate's
// own (mmsgate-*; a signed hand-off goes back through keepHandoff).
func copyAttribute(name string) bool {
	return name != attrError && name != attrOriginal && !strings.HasPrefix(strings.ToLower(name), "mmsgate-")
}

// The signed hand-off (pkg/sender): an acceptance Skycore gave that
// DynamoDB would not record. It goes back with its body, so that the
// sender records the acceptance instead of sending the request again; the
// sender checks its signature (the redrive cannot, and need not: an
// unsigned or forged one is ignored there as on any message).
const (
	attrHandoff    = "mmsgate-handoff"
	attrHandoffMAC = "mmsgate-handoff-mac"
)

// signedMAC matches a hand-off signature's form (hex HMAC-SHA256).
var signedMAC = regexp.MustCompile(`^[0-9a-f]{64}$`)

// keepHandoff copies m's hand-off attributes into in when both are there
// and the signature has its form; any other mmsgate-* attribute is dropped.
func keepHandoff(m sqstypes.Message, in *sqs.SendMessageInput) {
	payload, mac := attr(m, attrHandoff), attr(m, attrHandoffMAC)
	if payload == "" || !signedMAC.MatchString(mac) {
		return
	}
	if in.MessageAttributes == nil {
		in.MessageAttributes = map[string]sqstypes.MessageAttributeValue{}
	}
	for name, v := range map[string]string{attrHandoff: payload, attrHandoffMAC: mac} {
		in.MessageAttributes[name] = sqstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
}

// Redrive moves dead-letter messages back to the send queue, or lists them
// (DryRun). recs reads each id's record (nil: every verdict is unknown);
// each, when not nil, sees every message as it is handled.
//
// The portable mode receives from the DLQ, sends the body to To, then
// deletes it from the DLQ: at least once. A run that dies between the send
// and the delete leaves the message on both queues, and the next run moves
// it again; the sender's idempotency on id absorbs that (a renewed id is
// derived from the old one alone, so it is the same the second time). A
// failed send deletes nothing and stops the run. A body whose id is final
// (without Renew) or not valid stays on the DLQ: the sender would only
// ignore it or dead-letter it again.
func Redrive(ctx context.Context, q queues, recs messages, o RedriveOptions, each func(Dead)) (*RedriveResult, error) {
	if o.Wait == 0 {
		o.Wait = peekVisibility + time.Second
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
	res := &RedriveResult{DryRun: o.DryRun, Native: o.Native && !o.DryRun, Messages: []Dead{}, Approximate: -1}
	switch {
	case o.DryRun:
		return res, dryRun(ctx, q, recs, o, res, each)
	case o.Native:
		return res, native(ctx, q, o, res)
	}
	return res, move(ctx, q, recs, o, res, each)
}

// classify sets d's verdict from its id and its record.
func classify(ctx context.Context, recs messages, d *Dead) {
	if !sendreq.ValidID(d.ID) {
		d.Verdict = VerdictNoID
		return
	}
	if recs == nil {
		d.Verdict, d.Note = VerdictUnknown, "no table to read"
		return
	}
	m, err := recs.Get(ctx, d.ID)
	switch {
	case err != nil:
		d.Verdict, d.Note = VerdictUnknown, "table: "+err.Error()
	case m == nil || !m.Final():
		d.Verdict = VerdictRevivable
		if m != nil {
			d.State = m.State
		}
	default:
		d.Verdict, d.State = VerdictFinal, m.State
		if m.State != store.StateAccepted {
			d.RenewAs, _ = RenewID(d.ID)
		}
	}
}

// renewed matches an id that is already a renewal (<id>.r<N>).
var renewed = regexp.MustCompile(`^(.+)\.r([1-9][0-9]*)$`)

// RenewID is the id a final request's body is sent again under: <id>.r1,
// and <id>.r<N+1> for <id>.r<N>. It depends on the id alone, so that a
// redrive run again after a crash sends the same new id (a duplicate the
// sender absorbs), never a second request. ok is false when the new id is
// not a valid id (too long).
func RenewID(id string) (newID string, ok bool) {
	base, n := id, 0
	if m := renewed.FindStringSubmatch(id); m != nil {
		base = m[1]
		n, _ = strconv.Atoi(m[2])
	}
	newID = base + ".r" + strconv.Itoa(n+1)
	return newID, sendreq.ValidID(newID)
}

// RenewBody is body under newID with metadata.renewedFrom = oldID, every
// other field as it was (metadata's other keys included).
func RenewBody(body, oldID, newID string) (string, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &fields); err != nil {
		return "", fmt.Errorf("body is not a JSON object: %w", err)
	}
	meta := map[string]json.RawMessage{}
	if raw, ok := fields["metadata"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &meta); err != nil {
			return "", errors.New("its metadata is not an object")
		}
	}
	var err error
	if meta["renewedFrom"], err = json.Marshal(oldID); err != nil {
		return "", err
	}
	if fields["metadata"], err = json.Marshal(meta); err != nil {
		return "", err
	}
	if fields["id"], err = json.Marshal(newID); err != nil {
		return "", err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(fields); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
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

// peekVisibility is how long a dry run's receive hides a message: SQS
// has no peek, and the SDK leaves a VisibilityTimeout of 0 out of the
// request (the queue's default would apply), so 1 s, the least there is.
const peekVisibility = time.Second

// dryRun lists the queue without changing it: each receive hides what it
// returns for peekVisibility only (nothing stays hidden, even if the run
// dies), duplicates are dropped, and the listing ends once it has seen as
// many messages as SQS said the queue held, or nothing new came for
// peekVisibility × 3. Each message's receive count goes up.
func dryRun(ctx context.Context, q queues, recs messages, o RedriveOptions, res *RedriveResult, each func(Dead)) error {
	res.Approximate = approximateCount(ctx, q, o.DLQ)
	seen := map[string]bool{}
	o.Visibility = peekVisibility
	lastFresh := time.Now()
	for o.Max == 0 || len(res.Messages) < o.Max {
		if res.Approximate >= 0 && len(seen) >= res.Approximate || time.Since(lastFresh) > 3*peekVisibility {
			return nil
		}
		msgs, err := receive(ctx, q, o, batch(o, len(res.Messages)))
		if err != nil {
			return err
		}
		if len(msgs) == 0 && res.Approximate < 0 {
			return nil
		}
		for _, m := range msgs {
			if seen[aws.ToString(m.MessageId)] {
				continue
			}
			seen[aws.ToString(m.MessageId)] = true
			lastFresh = time.Now()
			d := describe(m)
			classify(ctx, recs, &d)
			res.Messages = append(res.Messages, d)
			each(d)
		}
		if len(msgs) == 0 {
			// Others may be hidden by the receives before: wait for them.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(peekVisibility / 4):
			}
		}
	}
	return nil
}

// approximateCount is what SQS says the queue holds, visible or not; -1
// when it cannot say.
func approximateCount(ctx context.Context, q queues, url string) int {
	out, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		return -1
	}
	n := 0
	for _, k := range []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
		sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible} {
		v, err := strconv.Atoi(out.Attributes[string(k)])
		if err != nil {
			return -1
		}
		n += v
	}
	return n
}

func move(ctx context.Context, q queues, recs messages, o RedriveOptions, res *RedriveResult, each func(Dead)) error {
	// A message the redrive policy moved names its queue, and goes back
	// there only: a queue is a lane, and a DLQ may hold another lane's
	// bodies (moved before that lane had its own DLQ).
	to, err := queueARN(ctx, q, o.To)
	if err != nil {
		return err
	}
	handled := map[string]bool{} // SQS may deliver a message twice: send it once
	keptIDs := map[string]bool{}
	var kept []sqstypes.Message // made visible again at the end
	defer func() { unhide(ctx, q, o.DLQ, kept) }()
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
			if keptIDs[d.MessageID] {
				kept = append(kept, m)
				continue
			}
			if handled[d.MessageID] {
				if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(o.DLQ), ReceiptHandle: m.ReceiptHandle}); err != nil {
					unhide(ctx, q, o.DLQ, msgs[i+1:])
					return fmt.Errorf("delete %s from the dead-letter queue after sending it (a later run sends it again; the sender ignores the duplicate): %w", d.MessageID, err)
				}
				continue
			}
			classify(ctx, recs, &d)
			in := sendInput(o.To, m)
			switch {
			case d.Verdict == VerdictNoID:
				d.Note = "kept: no valid id, the sender can never process it (fix the body and send it yourself)"
			case d.Source != "" && d.Source != to:
				d.Note = fmt.Sprintf("kept: it came from %s, not %s; --to that queue's URL moves it back", queueName(d.Source), queueName(to))
			case d.Verdict == VerdictFinal && d.State == store.StateAccepted:
				d.Note = "kept: Skycore accepted it; sending it again would reach the recipient twice"
			case d.Verdict == VerdictFinal && !o.Renew:
				d.Note = fmt.Sprintf("kept: %s is final (%s), the sender would ignore it; --renew sends it as %s", d.ID, d.State, orDash(d.RenewAs))
			case d.Verdict == VerdictFinal && d.RenewAs == "":
				d.Note = "kept: the renewed id would be longer than an id may be"
			case d.Verdict == VerdictFinal:
				body, err := RenewBody(aws.ToString(m.Body), d.ID, d.RenewAs)
				if err != nil {
					d.Note = "kept: cannot renew: " + err.Error()
					break
				}
				in.MessageBody = aws.String(body)
				d.Renewed = true
			}
			if strings.HasPrefix(d.Note, "kept:") {
				keptIDs[d.MessageID] = true
				kept = append(kept, m)
				res.Kept++
				res.Messages = append(res.Messages, d)
				each(d)
				continue
			}
			out, err := q.SendMessage(ctx, in)
			if err != nil {
				// Nothing deleted: show this one and the rest of the batch again.
				unhide(ctx, q, o.DLQ, msgs[i:])
				return fmt.Errorf("send %s to %s (it stays on the dead-letter queue): %w", d.MessageID, o.To, err)
			}
			handled[d.MessageID] = true
			d.Moved, d.NewMessageID = true, aws.ToString(out.MessageId)
			res.Moved++
			if d.Renewed {
				res.Renewed++
			}
			res.Messages = append(res.Messages, d)
			each(d)
			if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(o.DLQ), ReceiptHandle: m.ReceiptHandle}); err != nil {
				unhide(ctx, q, o.DLQ, msgs[i+1:])
				return fmt.Errorf("delete %s from the dead-letter queue after sending it (a later run sends it again; the sender ignores the duplicate): %w", d.MessageID, err)
			}
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
	keepHandoff(m, in)
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
