package faultproxy

import (
	"encoding/json"
	"maps"
	"strings"
)

// In front of an SQS (moto, or fakesqs under -short) the proxy also counts
// what SQS bills, by caller, operation and queue, and keeps the bodies of
// the calls a test asks to see (Record): the stand-in behind it then needs
// no Go API of its own, and the same test reads the same thing whatever
// serves the calls.

// SQSCall is one kind of SQS request.
type SQSCall struct {
	// Caller is the application id in the request's User-Agent ("app/<id>",
	// set by the SDK from AWS_SDK_UA_APP_ID); "" when there is none.
	Caller string
	Op     string // SendMessage, ReceiveMessage, SendMessageBatch, …
	Queue  string // the queue's name ("" when the request names none)
}

// SQSUsage is what the requests of one SQSCall added up to.
type SQSUsage struct {
	Requests int64
	// Messages sent, received, deleted or changed (a batch entry is one).
	Messages int64
	// Billed is what SQS bills: every 64 KiB chunk of a request's payload
	// (message bodies and attributes, sent or received) is one request,
	// and every request is at least one.
	Billed int64
}

// ChunkSize is the payload SQS bills as one request.
const ChunkSize = 64 << 10

// SQSCalls returns the SQS requests seen so far (JSON protocol: the SDK's).
func (p *Proxy) SQSCalls() map[SQSCall]SQSUsage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.sqs)
}

// Record makes the proxy keep the request body of every call of these
// operations that the target answered 2xx (Recorded).
func (p *Proxy) Record(ops ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.record == nil {
		p.record = map[string][]Recorded{}
	}
	for _, op := range ops {
		if _, ok := p.record[op]; !ok {
			p.record[op] = []Recorded{}
		}
	}
}

// Recorded is one kept call.
type Recorded struct {
	Caller string // as in Call
	Body   json.RawMessage
}

// Recorded returns the kept calls of op, oldest first.
func (p *Proxy) Recorded(op string) []Recorded {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Recorded(nil), p.record[op]...)
}

// sqsAttr is a message attribute as the JSON protocol carries it.
type sqsAttr struct {
	DataType    string
	StringValue string
	BinaryValue []byte
}

// sqsMessage is what SQS counts of a message, sent or received.
type sqsMessage struct {
	MessageBody, Body string // sent, received
	MessageAttributes map[string]sqsAttr
}

func (m sqsMessage) payload() int {
	n := len(m.MessageBody) + len(m.Body)
	for k, a := range m.MessageAttributes {
		n += len(k) + len(a.DataType) + len(a.StringValue) + len(a.BinaryValue)
	}
	return n
}

// countsAnswer says whether op's answer says how many messages it moved
// (the proxy keeps it to count them).
func countsAnswer(op string) bool { return op == "ReceiveMessage" || strings.HasSuffix(op, "Batch") }

// countSQS counts one SQS request: req is its body; ok says the answer was
// 2xx, and answer is that answer when countsAnswer(op). Every request
// counts and is billed by its payload (a conservative bill: failed calls
// included); only the messages SQS took, returned, deleted or changed
// count as messages.
func (p *Proxy) countSQS(caller, op string, req, answer []byte, ok bool) {
	var in struct {
		QueueUrl, QueueName string
		Entries             []sqsMessage
		sqsMessage
	}
	json.Unmarshal(req, &in)
	c := SQSCall{Caller: caller, Op: op, Queue: in.QueueName}
	if in.QueueUrl != "" {
		c.Queue = queueName(in.QueueUrl)
	}
	messages, payload := 0, in.payload()
	for _, m := range in.Entries {
		payload += m.payload()
	}
	switch {
	case !ok:
	case op == "ReceiveMessage":
		var out struct{ Messages []sqsMessage }
		if err := json.Unmarshal(answer, &out); err != nil {
			c.Op += " (answer unreadable)" // shows in the cost table rather than counting nothing
		}
		for _, m := range out.Messages {
			messages++
			payload += m.payload()
		}
	case strings.HasSuffix(op, "Batch"):
		var out struct{ Successful []json.RawMessage }
		if err := json.Unmarshal(answer, &out); err != nil {
			c.Op += " (answer unreadable)"
		}
		messages = len(out.Successful)
	case op == "SendMessage" || op == "DeleteMessage" || op == "ChangeMessageVisibility":
		messages = 1
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sqs == nil {
		p.sqs = map[SQSCall]SQSUsage{}
	}
	u := p.sqs[c]
	u.Requests++
	u.Messages += int64(messages)
	u.Billed += int64(max(1, (payload+ChunkSize-1)/ChunkSize))
	p.sqs[c] = u
}

// keep records a call when its op is recorded.
func (p *Proxy) keep(c Call, body []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if kept, ok := p.record[c.Op]; ok {
		p.record[c.Op] = append(kept, Recorded{Caller: c.Caller, Body: append(json.RawMessage(nil), body...)})
	}
}
