package stack

import (
	"bytes"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The functions' MemorySize in template.yaml, which the emulators are
// given (their REPORT lines say it back).
const (
	SenderMemoryMB   = 256
	PostbackMemoryMB = 128
	ReceiptMemoryMB  = 128
)

// The application ids the functions' SDK clients put in their User-Agent
// (AWS_SDK_UA_APP_ID): the stand-ins count requests by it.
const (
	SenderAppID   = "send-mms"
	PostbackAppID = "postback"
	ReceiptAppID  = "receipt-check"
)

// Usage is what the stack counted of what AWS bills and the stand-ins do
// not see: Lambda invocations and their billed duration, API Gateway
// requests, and the SQS requests of the event source mapping (the poller
// is the harness to the proxies). DynamoDB, SQS and Secrets Manager
// requests made by the functions are counted by the fault proxies.
type Usage struct {
	Functions   map[string]FunctionUsage // by function (SendMmsFunction, PostbackFunction)
	APIRequests int64                    // HTTP requests to the API Gateway adapter
	ESM         map[string]ESMUsage      // the event source mappings, by queue name
}

// FunctionUsage is one function's Lambda usage.
type FunctionUsage struct {
	Invocations int64         // invokes made (a crashed one included)
	Reports     int64         // REPORT lines: invocations that ended
	Billed      time.Duration // their Billed Duration
	Inits       int64         // INIT phases (cold starts)
	InitBilled  time.Duration // their durations, rounded up to 1 ms (billed, as for every custom runtime)
	MemoryMB    int           // Memory Size of the REPORT lines
}

// GBSeconds is the billed compute: invocations and INIT phases at MemoryMB.
func (f FunctionUsage) GBSeconds() float64 {
	return (f.Billed + f.InitBilled).Seconds() * float64(f.MemoryMB) / 1024
}

// ESMUsage counts what an SQS event source mapping asks of SQS.
type ESMUsage struct {
	Receives      int64 // ReceiveMessage calls that returned messages
	EmptyReceives int64 // ReceiveMessage calls that returned none (a local poll, not Lambda's long poll)
	Received      int64 // messages received
	DeleteBatches int64 // DeleteMessageBatch calls (10 entries at most) for the records that succeeded
	Deleted       int64 // messages deleted
}

// Usage returns what was counted so far.
func (s *Stack) Usage() Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := Usage{Functions: map[string]FunctionUsage{}, APIRequests: s.apiRequests.Load(), ESM: map[string]ESMUsage{}}
	for q, e := range s.esmUsage {
		u.ESM[q] = e
	}
	for name, r := range s.reports {
		u.Functions[name] = r.usage()
	}
	return u
}

// countInvoke counts one invoke of a function.
func (s *Stack) countInvoke(function string) { s.reports[function].invokes.Add(1) }

// countReceive counts one ReceiveMessage of queue's event source mapping
// that returned n messages.
func (s *Stack) countReceive(queue string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.esmUsage[queue]
	if n == 0 {
		e.EmptyReceives++
	} else {
		e.Receives++
		e.Received += int64(n)
	}
	s.esmUsage[queue] = e
}

// countDeleted counts the deletion of the n records of one batch that
// succeeded: Lambda deletes them with DeleteMessageBatch.
func (s *Stack) countDeleted(queue string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.esmUsage[queue]
	e.Deleted += int64(n)
	e.DeleteBatches += int64((n + 9) / 10)
	s.esmUsage[queue] = e
}

// countRequests counts the HTTP requests h serves.
func countRequests(n *atomic.Int64, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	})
}

var (
	reportLine = regexp.MustCompile(`^REPORT RequestId: .*Billed Duration: ([0-9]+) ms\s+Memory Size: ([0-9]+) MB`)
	initLine   = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)
)

// reports reads the emulators' REPORT and INIT REPORT lines of one
// function on their way to the log.
type reports struct {
	next    io.Writer // nil: discarded
	invokes atomic.Int64

	mu sync.Mutex
	u  FunctionUsage
}

func (r *reports) Write(p []byte) (int, error) {
	for line := range bytes.Lines(p) {
		r.read(line)
	}
	if r.next == nil {
		return len(p), nil
	}
	return r.next.Write(p)
}

func (r *reports) read(line []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := reportLine.FindSubmatch(line); m != nil {
		ms, _ := strconv.Atoi(string(m[1]))
		mb, _ := strconv.Atoi(string(m[2]))
		r.u.Reports++
		r.u.Billed += time.Duration(ms) * time.Millisecond
		r.u.MemoryMB = mb
	} else if m := initLine.FindSubmatch(line); m != nil {
		ms, _ := strconv.ParseFloat(string(m[1]), 64)
		r.u.Inits++
		r.u.InitBilled += time.Duration(ms+0.999999) * time.Millisecond
	}
}

func (r *reports) usage() FunctionUsage {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.u
	u.Invocations = r.invokes.Load()
	return u
}
