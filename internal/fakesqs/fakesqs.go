// Package fakesqs is an in-memory SQS speaking the JSON protocol that
// aws-sdk-go-v2's service/sqs uses, so the real client runs against it:
// queues with visibility timeouts, receive counts, delays, redrive to a
// dead-letter queue, and MD5s the SDK verifies. It serves `go test
// -short` only, which starts no service: moto's server (Python) serves
// everything else, and internal/moto runs the same behaviour tests
// against both. It has no Go API beyond Start: tests see it, as they see
// moto, through the SQS API and the fault proxy in front of it.
package fakesqs

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Attr is a message attribute.
type Attr struct {
	DataType    string  `json:"DataType"`
	StringValue *string `json:"StringValue,omitempty"`
	BinaryValue []byte  `json:"BinaryValue,omitempty"`
}

// Message is one stored message.
type Message struct {
	ID            string
	Body          string
	Attributes    map[string]Attr
	ReceiveCount  int
	SentAt        time.Time
	FirstReceive  time.Time
	ReceivedAt    time.Time // the current receive (its receipt handle's)
	VisibleAt     time.Time
	ReceiptHandle string
	// DeadLetterReason tells why it is in a DLQ ("maxReceiveCount").
	DeadLetterReason string
}

type queue struct {
	name       string
	visibility time.Duration
	dlq        string
	maxReceive int
	msgs       []*Message
}

// Server is the fake. Its zero value is not usable; call New.
type Server struct {
	mu     sync.Mutex
	queues map[string]*queue
	base   string
	now    func() time.Time
	srv    *http.Server
	notify chan struct{}
}

// New returns an empty fake.
func New() *Server {
	return &Server{queues: map[string]*queue{}, now: time.Now, notify: make(chan struct{})}
}

// Start serves on addr ("127.0.0.1:0" picks a free port) and returns the URL.
func (s *Server) Start(addr string) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	s.base = "http://" + l.Addr().String()
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(l)
	return s.base, nil
}

// Close stops the server.
func (s *Server) Close() error {
	if s.srv != nil {
		return s.srv.Close()
	}
	return nil
}

// createQueue makes a queue; dlq "" means no redrive. It returns its URL.
func (s *Server) createQueue(name string, visibility time.Duration, dlq string, maxReceive int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.queues[name]; !ok {
		s.queues[name] = &queue{name: name, visibility: visibility, dlq: dlq, maxReceive: maxReceive}
	}
	return s.queueURL(name)
}

func (s *Server) queueURL(name string) string { return s.base + "/000000000000/" + name }

// queueName extracts the name from a queue URL.
func queueName(url string) string { return url[strings.LastIndexByte(url, '/')+1:] }

// MaxMessageSize is the largest message, counted as SQS counts it: the
// body, and each attribute's name, type and value (256 KiB, the queues'
// MaximumMessageSize as mmsgate assumes it). moto checks the body alone.
const MaxMessageSize = 256 * 1024

// send puts a message on a queue.
func (s *Server) send(name, body string, attrs map[string]Attr, delay time.Duration) (*Message, error) {
	size := len(body)
	for k, a := range attrs {
		size += len(k) + len(a.DataType) + len(a.BinaryValue)
		if a.StringValue != nil {
			size += len(*a.StringValue)
		}
	}
	if size > MaxMessageSize {
		//lint:ignore ST1005 SQS's own words, as clients see them
		return nil, fmt.Errorf("One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", MaxMessageSize)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.queues[name]
	if !ok {
		return nil, fmt.Errorf("no queue %q", name)
	}
	now := s.now()
	m := &Message{ID: newID(), Body: body, Attributes: attrs, SentAt: now, VisibleAt: now.Add(delay)}
	q.msgs = append(q.msgs, m)
	s.wake()
	return m, nil
}

// wake releases long polls; s.mu is held.
func (s *Server) wake() {
	close(s.notify)
	s.notify = make(chan struct{})
}

// receive takes up to max visible messages and hides them for visibility
// (0: the queue's default). Messages past the redrive limit move to the DLQ.
func (s *Server) receive(name string, max int, visibility time.Duration) ([]Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.queues[name]
	if !ok {
		return nil, fmt.Errorf("no queue %q", name)
	}
	if visibility <= 0 {
		visibility = q.visibility
	}
	now := s.now()
	var out []Message
	kept := q.msgs[:0]
	for _, m := range q.msgs {
		if len(out) >= max || m.VisibleAt.After(now) {
			kept = append(kept, m)
			continue
		}
		if q.dlq != "" && q.maxReceive > 0 && m.ReceiveCount >= q.maxReceive {
			if d, ok := s.queues[q.dlq]; ok {
				m.DeadLetterReason, m.VisibleAt, m.ReceiptHandle = "maxReceiveCount", now, ""
				d.msgs = append(d.msgs, m)
				continue
			}
		}
		m.ReceiveCount++
		if m.FirstReceive.IsZero() {
			m.FirstReceive = now
		}
		m.VisibleAt, m.ReceivedAt = now.Add(visibility), now
		m.ReceiptHandle = m.ID + "#" + newID()
		out = append(out, *m)
		kept = append(kept, m)
	}
	q.msgs = kept
	return out, nil
}

// delete removes the message with this receipt handle.
func (s *Server) delete(name, receipt string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, i, err := s.find(name, receipt)
	if err != nil {
		return err
	}
	if i >= 0 {
		q.msgs = append(q.msgs[:i], q.msgs[i+1:]...)
	}
	return nil // SQS ignores stale handles of deleted messages
}

// MaxVisibility is SQS's limit on a message's visibility, counted from
// its receive.
const MaxVisibility = 12 * time.Hour

// changeVisibility makes the message visible after d.
func (s *Server) changeVisibility(name, receipt string, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, i, err := s.find(name, receipt)
	if err != nil {
		return err
	}
	if i < 0 {
		return fmt.Errorf("receipt handle is not current")
	}
	// As SQS (and moto): at most 12 hours in all from the receive.
	if total := s.now().Sub(q.msgs[i].ReceivedAt) + d; total > MaxVisibility {
		return fmt.Errorf("value %d for parameter VisibilityTimeout is invalid: total VisibilityTimeout for the message is beyond the limit [43200 seconds]", int(d/time.Second))
	}
	q.msgs[i].VisibleAt = s.now().Add(d)
	s.wake()
	return nil
}

// find locates the message holding receipt (-1 when none does); s.mu held.
func (s *Server) find(name, receipt string) (*queue, int, error) {
	q, ok := s.queues[name]
	if !ok {
		return nil, -1, fmt.Errorf("no queue %q", name)
	}
	for i, m := range q.msgs {
		if m.ReceiptHandle == receipt {
			return q, i, nil
		}
	}
	return q, -1, nil
}

// messages returns a snapshot of a queue's messages, visible or not.
func (s *Server) messages(name string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.queues[name]
	if !ok {
		return nil
	}
	out := make([]Message, len(q.msgs))
	for i, m := range q.msgs {
		out[i] = *m
	}
	return out
}

// batchEntry is one entry of SendMessageBatch, DeleteMessageBatch or
// ChangeMessageVisibilityBatch.
type batchEntry struct {
	ID                string          `json:"Id"`
	MessageBody       string          `json:"MessageBody"`
	DelaySeconds      int             `json:"DelaySeconds"`
	MessageAttributes map[string]Attr `json:"MessageAttributes"`
	ReceiptHandle     string          `json:"ReceiptHandle"`
	VisibilityTimeout int             `json:"VisibilityTimeout"`
}

// ServeHTTP speaks the SQS JSON protocol (X-Amz-Target: AmazonSQS.<Op>).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
	var in struct {
		QueueURL                    string          `json:"QueueUrl"`
		QueueName                   string          `json:"QueueName"`
		MessageBody                 string          `json:"MessageBody"`
		DelaySeconds                int             `json:"DelaySeconds"`
		MessageAttributes           map[string]Attr `json:"MessageAttributes"`
		MaxNumberOfMessages         int             `json:"MaxNumberOfMessages"`
		VisibilityTimeout           *int            `json:"VisibilityTimeout"`
		WaitTimeSeconds             int             `json:"WaitTimeSeconds"`
		ReceiptHandle               string          `json:"ReceiptHandle"`
		Entries                     []batchEntry    `json:"Entries"`
		Attributes                  map[string]string
		MessageAttributeNames       []string
		AttributeNames              []string
		MessageSystemAttributeNames []string
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil {
		fail(w, "InvalidParameterValue", err.Error(), 400)
		return
	}
	name := queueName(in.QueueURL)
	switch op {
	case "CreateQueue":
		vis := 30 * time.Second
		if v, err := strconv.Atoi(in.Attributes["VisibilityTimeout"]); err == nil {
			vis = time.Duration(v) * time.Second
		}
		dlq, maxRecv := "", 0
		if rp := in.Attributes["RedrivePolicy"]; rp != "" {
			var p struct {
				Target string `json:"deadLetterTargetArn"`
				Max    any    `json:"maxReceiveCount"`
			}
			json.Unmarshal([]byte(rp), &p)
			dlq = p.Target[strings.LastIndexByte(p.Target, ':')+1:]
			maxRecv, _ = strconv.Atoi(fmt.Sprint(p.Max))
		}
		reply(w, map[string]string{"QueueUrl": s.createQueue(in.QueueName, vis, dlq, maxRecv)})
	case "GetQueueUrl":
		s.mu.Lock()
		_, ok := s.queues[in.QueueName]
		s.mu.Unlock()
		if !ok {
			fail(w, "QueueDoesNotExist", "The specified queue does not exist.", 400)
			return
		}
		reply(w, map[string]string{"QueueUrl": s.queueURL(in.QueueName)})
	case "SendMessage":
		m, err := s.send(name, in.MessageBody, in.MessageAttributes, time.Duration(in.DelaySeconds)*time.Second)
		if err != nil {
			fail(w, "QueueDoesNotExist", err.Error(), 400)
			return
		}
		reply(w, sent(in.MessageBody, in.MessageAttributes, m.ID, ""))
	case "SendMessageBatch":
		ok := []map[string]string{}
		for _, e := range in.Entries {
			m, err := s.send(name, e.MessageBody, e.MessageAttributes, time.Duration(e.DelaySeconds)*time.Second)
			if err != nil {
				fail(w, "QueueDoesNotExist", err.Error(), 400)
				return
			}
			ok = append(ok, sent(e.MessageBody, e.MessageAttributes, m.ID, e.ID))
		}
		// Every entry goes through: refused ones come from the fault proxy.
		reply(w, map[string]any{"Successful": ok, "Failed": []any{}})
	case "ReceiveMessage":
		s.receiveHTTP(w, r, name, in.MaxNumberOfMessages, in.VisibilityTimeout, in.WaitTimeSeconds, in.MessageAttributeNames)
	case "DeleteMessage":
		if err := s.delete(name, in.ReceiptHandle); err != nil {
			fail(w, "QueueDoesNotExist", err.Error(), 400)
			return
		}
		reply(w, map[string]string{})
	case "DeleteMessageBatch":
		ok := []map[string]string{}
		for _, e := range in.Entries {
			if err := s.delete(name, e.ReceiptHandle); err != nil {
				fail(w, "QueueDoesNotExist", err.Error(), 400)
				return
			}
			ok = append(ok, map[string]string{"Id": e.ID})
		}
		reply(w, map[string]any{"Successful": ok, "Failed": []any{}})
	case "ChangeMessageVisibility":
		v := 0
		if in.VisibilityTimeout != nil {
			v = *in.VisibilityTimeout
		}
		if err := s.changeVisibility(name, in.ReceiptHandle, time.Duration(v)*time.Second); err != nil {
			fail(w, "InvalidParameterValue", err.Error(), 400)
			return
		}
		reply(w, map[string]string{})
	case "GetQueueAttributes":
		msgs := s.messages(name)
		visible := 0
		for _, m := range msgs {
			if !m.VisibleAt.After(s.now()) {
				visible++
			}
		}
		reply(w, map[string]any{"Attributes": map[string]string{
			"QueueArn":                              "arn:aws:sqs:us-east-1:000000000000:" + name,
			"ApproximateNumberOfMessages":           strconv.Itoa(visible),
			"ApproximateNumberOfMessagesNotVisible": strconv.Itoa(len(msgs) - visible),
		}})
	default:
		fail(w, "UnsupportedOperation", "fakesqs does not implement "+op, 400)
	}
}

// sent is the answer to one sent message (id is the batch entry's, or "").
func sent(body string, attrs map[string]Attr, messageID, id string) map[string]string {
	out := map[string]string{"MessageId": messageID, "MD5OfMessageBody": md5Hex(body)}
	if id != "" {
		out["Id"] = id
	}
	if len(attrs) > 0 {
		out["MD5OfMessageAttributes"] = attributesMD5(attrs)
	}
	return out
}

// receiveHTTP answers ReceiveMessage.
func (s *Server) receiveHTTP(w http.ResponseWriter, r *http.Request, name string, max int, vis *int, wait int, attrNames []string) {
	if max <= 0 {
		max = 1
	}
	var visibility time.Duration
	if vis != nil {
		visibility = time.Duration(*vis) * time.Second
	}
	deadline := time.Now().Add(time.Duration(min(wait, 20)) * time.Second)
	for {
		s.mu.Lock()
		ch := s.notify
		s.mu.Unlock()
		msgs, err := s.receive(name, max, visibility)
		if err != nil {
			fail(w, "QueueDoesNotExist", err.Error(), 400)
			return
		}
		if len(msgs) > 0 || !time.Now().Before(deadline) {
			out := make([]map[string]any, 0, len(msgs))
			for _, m := range msgs {
				o := map[string]any{
					"MessageId": m.ID, "ReceiptHandle": m.ReceiptHandle, "Body": m.Body, "MD5OfBody": md5Hex(m.Body),
					"Attributes": map[string]string{
						"ApproximateReceiveCount":          strconv.Itoa(m.ReceiveCount),
						"SentTimestamp":                    strconv.FormatInt(m.SentAt.UnixMilli(), 10),
						"ApproximateFirstReceiveTimestamp": strconv.FormatInt(m.FirstReceive.UnixMilli(), 10),
						"SenderId":                         "000000000000",
					},
				}
				if len(m.Attributes) > 0 && len(attrNames) > 0 {
					o["MessageAttributes"] = m.Attributes
					o["MD5OfMessageAttributes"] = attributesMD5(m.Attributes)
				}
				out = append(out, o)
			}
			reply(w, map[string]any{"Messages": out})
			return
		}
		select {
		case <-ch:
		case <-time.After(50 * time.Millisecond): // hidden messages becoming visible
		case <-r.Context().Done():
			return
		}
	}
}

// reply writes the whole response in one write: aws-sdk-go-v2 may retry a
// call whose answer arrives in pieces (issue #2737).
func reply(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

func fail(w http.ResponseWriter, code, msg string, status int) {
	b, _ := json.Marshal(map[string]string{"__type": "com.amazonaws.sqs#" + code, "message": msg})
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("x-amzn-query-error", "AWS.SimpleQueueService."+code+";Sender")
	w.WriteHeader(status)
	w.Write(b)
}

func md5Hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// attributesMD5 is SQS's digest of message attributes: each, by name, as
// length-prefixed name, type, a transport byte and the value.
func attributesMD5(attrs map[string]Attr) string {
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	sort.Strings(names)
	h := md5.New()
	put := func(b []byte) {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(b)))
		h.Write(l[:])
		h.Write(b)
	}
	for _, n := range names {
		a := attrs[n]
		put([]byte(n))
		put([]byte(a.DataType))
		if a.StringValue != nil {
			h.Write([]byte{1})
			put([]byte(*a.StringValue))
		} else {
			h.Write([]byte{2})
			put(a.BinaryValue)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
