package stack

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/rie"
	"github.com/mmsgate/mmsgate/pkg/schedule"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
)

// The event source mapping over the SQS API: what Lambda does for
// an SQS trigger with ReportBatchItemFailures. It receives up to
// BatchSize messages (waiting up to BatchWindow to fill a batch), invokes
// one sender instance with them, deletes the records the answer does not
// list in batchItemFailures, and leaves the others (or the whole batch,
// when the function fails or the answer names a record that is not in
// the batch) to come back after their visibility timeout; the queue's own
// redrive policy moves a message to the DLQ after maxReceiveCount.

// Serve polls both send queues (the two lanes, docs/request.md) with every
// sender instance until ctx ends (`make dev`); progress is called after
// each batch. As Lambda does with two event source mappings on one
// function, each queue has its pollers and their batches share the
// instances: an instance takes one invoke at a time (rie.Instance), so a
// transactional batch waits at most for one bulk batch's invocation.
func (s *Stack) Serve(ctx context.Context, progress func(Progress)) error {
	bulk := s.Bulk
	if len(bulk) == 0 {
		bulk = s.Senders
	}
	errs := make(chan error, len(s.Senders)+len(bulk)+1)
	for _, inst := range s.Senders {
		go func() { errs <- s.esm(ctx, inst, sendSource, true, progress) }()
	}
	for _, inst := range bulk {
		go func() { errs <- s.esm(ctx, inst, bulkSource, true, progress) }()
	}
	n := len(s.Senders) + len(bulk)
	if s.Receipt != nil {
		n++
		go func() { errs <- s.esm(ctx, s.Receipt, receiptSource, true, nil) }()
	}
	if s.Sweeper != nil {
		n++
		go func() { errs <- s.sweepLoop(ctx, cmp.Or(s.opts.SweepPeriod, schedule.Period)) }()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && !errors.Is(err, context.Canceled) && first == nil {
			first = err
		}
	}
	return first
}

func (s *Stack) esm(ctx context.Context, inst *rie.Instance, src source, forever bool, progress func(Progress)) error {
	q := s.Env.SQSClient()
	url := s.Env.URL(src.queue)
	for ctx.Err() == nil {
		batch, err := s.receiveBatch(ctx, q, url, src.queue, forever)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if len(batch) == 0 {
			if forever {
				continue
			}
			c, err := s.Env.QueueCounts(ctx, url)
			if err != nil {
				return err
			}
			if c.Total() == 0 && (src != sendSource || s.feeders.Load() == 0) {
				// Nothing visible, in flight or delayed, nothing more coming:
				// drained, unless scheduled requests wait for the sweeper.
				if src != sendSource {
					return nil
				}
				waiting, err := s.scheduledWaiting(ctx)
				if err != nil {
					return fmt.Errorf("reading the due index: %w", err)
				}
				if !waiting {
					return nil
				}
				if s.Sweeper == nil {
					return errors.New("scheduled requests wait in the table, but no schedule-sweep function runs")
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		s.invokeBatch(ctx, inst, q, src, batch)
		s.mu.Lock()
		s.batches++
		p := Progress{Batches: s.batches}
		s.mu.Unlock()
		if c, err := s.Env.QueueCounts(ctx, url); err == nil {
			p.Queued = c.Total()
		}
		s.collect()
		p.Events = len(s.Events())
		if progress != nil {
			progress(p)
		}
	}
	return ctx.Err()
}

// receiveBatch long-polls for up to BatchSize messages, waiting up to
// BatchWindow for a batch to fill.
func (s *Stack) receiveBatch(ctx context.Context, q *sqs.Client, url, queue string, forever bool) ([]types.Message, error) {
	var batch []types.Message
	deadline := time.Now().Add(s.opts.BatchWindow)
	for {
		wait := int32(0)
		switch {
		case len(batch) == 0 && forever:
			wait = 20
		case len(batch) > 0 && time.Until(deadline) > time.Second:
			wait = int32(min(time.Until(deadline)/time.Second, 20))
		}
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url),
			MaxNumberOfMessages: int32(min(s.opts.BatchSize-len(batch), 10)), WaitTimeSeconds: wait,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll}})
		if err != nil {
			return batch, err
		}
		s.countReceive(queue, len(out.Messages))
		batch = append(batch, out.Messages...)
		if len(batch) == 0 || len(batch) >= s.opts.BatchSize || !time.Now().Before(deadline) {
			return batch, nil
		}
		if len(out.Messages) == 0 && wait == 0 {
			select {
			case <-ctx.Done():
				return batch, nil
			case <-time.After(min(time.Until(deadline), 100*time.Millisecond)):
			}
		}
	}
}

// invokeBatch sends one batch to the sender and deletes what succeeded.
func (s *Stack) invokeBatch(ctx context.Context, inst *rie.Instance, q *sqs.Client, src source, batch []types.Message) {
	url := s.Env.URL(src.queue)
	ev := events.SQSEvent{}
	ids := make([]string, len(batch))
	for i, m := range batch {
		attrs := map[string]events.SQSMessageAttribute{}
		for k, a := range m.MessageAttributes {
			attrs[k] = events.SQSMessageAttribute{DataType: aws.ToString(a.DataType), StringValue: a.StringValue, BinaryValue: a.BinaryValue}
		}
		sys := map[string]string{"SenderId": "000000000000"}
		for _, k := range []string{"ApproximateReceiveCount", "SentTimestamp", "ApproximateFirstReceiveTimestamp", "SenderId"} {
			if v, ok := m.Attributes[k]; ok {
				sys[k] = v
			}
		}
		ev.Records = append(ev.Records, events.SQSMessage{
			MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
			Md5OfBody: aws.ToString(m.MD5OfBody), Md5OfMessageAttributes: aws.ToString(m.MD5OfMessageAttributes),
			MessageAttributes: attrs, Attributes: sys,
			EventSource: "aws:sqs", EventSourceARN: cmp.Or(s.arns[src.queue], "arn:aws:sqs:"+localenv.Region+":000000000000:"+src.queue),
			AWSRegion: localenv.Region,
		})
		ids[i] = sendreq.PeekID([]byte(aws.ToString(m.Body)))
	}
	payload, _ := json.Marshal(ev)
	s.track(ids, 1)
	s.countInvoke(src.function)
	out, err := inst.Invoke(ctx, payload)
	s.track(ids, -1)
	var resp events.SQSEventResponse
	if err == nil {
		err = json.Unmarshal(out, &resp)
	}
	if err != nil {
		return // a function error: the whole batch comes back after its visibility timeout
	}
	inBatch := map[string]bool{}
	for _, m := range batch {
		inBatch[aws.ToString(m.MessageId)] = true
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		if !inBatch[f.ItemIdentifier] {
			return // Lambda treats an unknown or empty identifier as a failure of the whole batch
		}
		failed[f.ItemIdentifier] = true
	}
	var done []types.Message
	var returned []string
	for i, m := range batch {
		if !failed[aws.ToString(m.MessageId)] {
			done = append(done, m)
		} else {
			returned = append(returned, ids[i])
		}
	}
	if len(returned) > 0 && s.opts.Returned != nil {
		s.opts.Returned(returned)
	}
	s.Env.Delete(context.WithoutCancel(ctx), url, done)
	s.countDeleted(src.queue, len(done))
}

// Counts are the queues' depths (`make dev`'s status line).
type Counts struct {
	Send, Events, DLQ localenv.Counts
	Bulk, BulkDLQ     localenv.Counts // the bulk lane
	InFlight          int             // request ids in sender invocations under way
	Batches           int
}

// Status reads the three queues' counters.
func (s *Stack) Status(ctx context.Context) (Counts, error) {
	var c Counts
	var err error
	if c.Send, err = s.Env.QueueCounts(ctx, s.Env.SendQueueURL); err != nil {
		return c, err
	}
	if c.Events, err = s.Env.QueueCounts(ctx, s.Env.EventsQueueURL); err != nil {
		return c, err
	}
	if c.DLQ, err = s.Env.QueueCounts(ctx, s.Env.DLQURL); err != nil {
		return c, err
	}
	if c.Bulk, err = s.Env.QueueCounts(ctx, s.Env.BulkSendQueueURL); err != nil {
		return c, err
	}
	if c.BulkDLQ, err = s.Env.QueueCounts(ctx, s.Env.BulkDLQURL); err != nil {
		return c, err
	}
	c.InFlight = len(s.InFlight())
	s.mu.Lock()
	c.Batches = s.batches
	s.mu.Unlock()
	return c, nil
}
