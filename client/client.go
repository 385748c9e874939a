package client

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SendAPI is the part of the SQS client that Client uses; *sqs.Client
// has it.
type SendAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

var _ SendAPI = (*sqs.Client)(nil)

// Batch limits of SendMessageBatch.
const (
	MaxBatchEntries = 10         // entries per call
	MaxBatchBytes   = 256 * 1024 // bodies per call: SQS's historical limit, the safe one for every queue
	maxEntryID      = 80         // characters of a batch entry id
)

// Errors a batch entry can fail with before it reaches SQS.
var (
	// ErrDuplicateID marks a request whose id came earlier in the same
	// batch: the sender sends one id at most once, so the later request
	// would be dropped without an event.
	ErrDuplicateID = errors.New("id given twice in one batch")
	// ErrNoResult marks an entry that SQS's answer did not mention: it may
	// or may not be queued. Sending it again is safe (the id is the
	// idempotency key).
	ErrNoResult = errors.New("no result for this entry in the SendMessageBatch answer")
)

// Client validates send requests and puts them on the send queue.
type Client struct {
	api      SendAPI
	queueURL string
	policy   Policy
}

// New returns a client for the send queue at queueURL (SEND_QUEUE_URL of
// the deployment). p must match the sender's configuration (see Policy).
func New(api SendAPI, queueURL string, p Policy) *Client {
	return &Client{api: api, queueURL: queueURL, policy: p}
}

// Bulk returns a client for the bulk lane (docs/request.md): the same
// requests, put on the bulk send queue at bulkQueueURL (the deployment's
// BulkSendQueueUrl output). Bulk requests share the account's Skycore
// throughput with the send queue's and take only what those leave, so a
// campaign never delays a password reset. Sending an id on both lanes is
// safe: one id is sent at most once, whatever the queue.
func (c *Client) Bulk(bulkQueueURL string) *Client {
	return &Client{api: c.api, queueURL: bulkQueueURL, policy: c.policy}
}

// Validate checks req with the sender's rules under the client's policy;
// see the package-level Validate.
func (c *Client) Validate(req Request) (Request, error) { return Validate(req, c.policy) }

// Send validates req and enqueues it. An invalid request never reaches SQS:
// the error wraps ErrInvalid and lists every violation (apperr.All). Any
// other error is SQS's; sending the same request again is safe, since the
// sender sends one id at most once.
func (c *Client) Send(ctx context.Context, req Request) error {
	body, err := c.body(req)
	if err != nil {
		return err
	}
	_, err = c.api.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:    aws.String(c.queueURL),
		MessageBody: aws.String(body),
	})
	if err != nil {
		return fmt.Errorf("send %q: %w", req.ID, err)
	}
	return nil
}

// body validates req and encodes it as docs/request.md's JSON.
func (c *Client) body(req Request) (string, error) {
	req, err := c.Validate(req)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("encode %q: %w", req.ID, err)
	}
	return string(b), nil
}

// Failure is one request of a batch that was not enqueued.
type Failure struct {
	Index int    // its position in the slice given to SendBatch
	ID    string // its id
	// Err says why: ErrInvalid (with every violation), ErrDuplicateID,
	// *EntryError (SQS refused the entry), ErrNoResult, or the error of
	// the whole SendMessageBatch call.
	Err error
}

// Retryable reports whether sending the same request again may succeed:
// false for a request that is invalid, repeated in its batch, or refused
// by SQS as the sender's fault.
func (f Failure) Retryable() bool {
	var ee *EntryError
	switch {
	case errors.Is(f.Err, ErrInvalid), errors.Is(f.Err, ErrDuplicateID):
		return false
	case errors.As(f.Err, &ee):
		return !ee.SenderFault
	}
	return true
}

// EntryError is SQS's refusal of one batch entry (BatchResultErrorEntry).
type EntryError struct {
	Code        string
	Message     string
	SenderFault bool // the entry is at fault; false: SQS's side, worth retrying
}

func (e *EntryError) Error() string {
	fault := "server"
	if e.SenderFault {
		fault = "sender"
	}
	return fmt.Sprintf("sqs refused the entry (%s fault): %s: %s", fault, e.Code, e.Message)
}

// BatchError lists the requests of a SendBatch that were not enqueued;
// every other request was.
type BatchError struct {
	Total    int // requests given to SendBatch
	Failures []Failure
}

func (e *BatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d requests not enqueued", len(e.Failures), e.Total)
	for i, f := range e.Failures {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Failures)-i)
			break
		}
		fmt.Fprintf(&b, "; %q: %v", f.ID, f.Err)
	}
	return b.String()
}

// Unwrap gives every failure's error, so that errors.Is(err, ErrInvalid)
// asks whether any request was invalid.
func (e *BatchError) Unwrap() []error {
	out := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		out[i] = f.Err
	}
	return out
}

// IDs lists the ids that were not enqueued, in the order given.
func (e *BatchError) IDs() []string {
	out := make([]string, len(e.Failures))
	for i, f := range e.Failures {
		out[i] = f.ID
	}
	return out
}

// entry is one validated request on its way into a batch.
type entry struct {
	index int
	id    string
	body  string
}

// SendBatch validates every request and enqueues the valid ones with
// SendMessageBatch, at most MaxBatchEntries (and MaxBatchBytes of bodies)
// per call, in the order given. It returns nil when every request was
// enqueued, else a *BatchError listing the others (each with its index, id
// and reason); the rest were enqueued. Invalid requests, and a second
// request with an id already in this batch, never reach SQS.
func (c *Client) SendBatch(ctx context.Context, reqs []Request) error {
	var failures []Failure
	var entries []entry
	seen := make(map[string]bool, len(reqs))
	for i, req := range reqs {
		body, err := c.body(req)
		switch {
		case err != nil:
			failures = append(failures, Failure{Index: i, ID: req.ID, Err: err})
		case seen[req.ID]:
			failures = append(failures, Failure{Index: i, ID: req.ID, Err: ErrDuplicateID})
		default:
			seen[req.ID] = true
			entries = append(entries, entry{index: i, id: req.ID, body: body})
		}
	}
	for _, chunk := range chunks(entries) {
		failures = append(failures, c.sendChunk(ctx, chunk)...)
	}
	if len(failures) == 0 {
		return nil
	}
	slices.SortFunc(failures, func(a, b Failure) int { return cmp.Compare(a.Index, b.Index) })
	return &BatchError{Total: len(reqs), Failures: failures}
}

// chunks splits entries into SendMessageBatch calls: at most
// MaxBatchEntries each, and at most MaxBatchBytes of bodies unless one body
// alone is larger (it then goes alone, and SQS decides).
func chunks(entries []entry) [][]entry {
	var out [][]entry
	var cur []entry
	size := 0
	for _, e := range entries {
		if len(cur) == MaxBatchEntries || (len(cur) > 0 && size+len(e.body) > MaxBatchBytes) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, e)
		size += len(e.body)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// sendChunk sends one SendMessageBatch and returns the entries not enqueued.
func (c *Client) sendChunk(ctx context.Context, chunk []entry) []Failure {
	fail := func(err error) []Failure {
		out := make([]Failure, len(chunk))
		for i, e := range chunk {
			out[i] = Failure{Index: e.index, ID: e.id, Err: err}
		}
		return out
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	byEntry := make(map[string]entry, len(chunk))
	in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(c.queueURL), Entries: make([]sqstypes.SendMessageBatchRequestEntry, len(chunk))}
	for i, e := range chunk {
		id := EntryID(i, e.id)
		byEntry[id] = e
		in.Entries[i] = sqstypes.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String(e.body)}
	}
	out, err := c.api.SendMessageBatch(ctx, in)
	if err != nil {
		return fail(fmt.Errorf("send batch: %w", err))
	}
	var failures []Failure
	for _, f := range out.Failed {
		e, ok := byEntry[aws.ToString(f.Id)]
		if !ok {
			continue // not ours; every entry of ours without a result is reported below
		}
		delete(byEntry, aws.ToString(f.Id))
		failures = append(failures, Failure{Index: e.index, ID: e.id,
			Err: &EntryError{Code: aws.ToString(f.Code), Message: aws.ToString(f.Message), SenderFault: f.SenderFault}})
	}
	for _, s := range out.Successful {
		delete(byEntry, aws.ToString(s.Id))
	}
	for _, e := range byEntry {
		failures = append(failures, Failure{Index: e.index, ID: e.id, Err: ErrNoResult})
	}
	return failures
}

// EntryID is the SendMessageBatch entry id of the request with id at
// position i of its call: distinct within a call whatever the ids (the
// position comes first), readable in SQS's answers (the id follows), and
// within SQS's rule of at most 80 characters of A-Z a-z 0-9 _ - (any
// other character of the id, such as '.' or ':', becomes '_').
func EntryID(i int, id string) string {
	b := []byte(strconv.Itoa(i) + "-")
	for j := 0; j < len(id) && len(b) < maxEntryID; j++ {
		ch := id[j]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-') {
			ch = '_'
		}
		b = append(b, ch)
	}
	return string(b)
}
