// Package faultproxy sits in front of a local AWS stand-in (dynalite, our
// SQS and Secrets Manager stand-ins, or moto) and answers some calls
// itself: DynamoDB throttling, a service that is down or slow, SQS sends
// refused whole or per batch entry, so that the real SDK's retries and
// mmsgate's handling of them run. It counts every call by caller,
// operation and outcome (Calls), and SQS calls by queue with the messages
// and billed chunks they carry (SQSCalls): what the soak's cost table is
// made of. Record keeps chosen calls' bodies for tests to read.
package faultproxy

import (
	"bytes"
	"encoding/json"
	"hash/crc32"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards to a target unless it is throttling.
type Proxy struct {
	mu        sync.Mutex
	until     time.Time // throttle every call until then
	next      int       // throttle the next n calls
	match     string    // throttle calls whose body holds match…
	matchN    int       // …this many times
	throttled atomic.Int64
	after     func(body []byte) // called once a forwarded call was answered
	calls     map[Call]int64
	measure   bool                     // ask the target for ConsumedCapacity
	units     map[Call]float64         // capacity units it reported
	sqs       map[SQSCall]SQSUsage     // SQSCalls
	record    map[string][]Recorded    // Record
	refuse    func(queue string) error // RefuseSends
	down      bool                     // SetDown
	delay     time.Duration            // SetDelay
	rp        *httputil.ReverseProxy
	srv       *http.Server
}

// New proxies to target (http://127.0.0.1:port).
func New(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	// A client that gives up mid-call is normal under load; not worth a log line.
	rp.ErrorLog = log.New(io.Discard, "", 0)
	return &Proxy{rp: rp}, nil
}

// Front starts a proxy to target on addr ("127.0.0.1:0" picks a free
// port) and returns it with its URL.
func Front(target, addr string) (*Proxy, string, error) {
	p, err := New(target)
	if err != nil {
		return nil, "", err
	}
	u, err := p.Start(addr)
	if err != nil {
		return nil, "", err
	}
	return p, u, nil
}

// Start serves on addr ("127.0.0.1:0" picks a free port) and returns the URL.
func (p *Proxy) Start(addr string) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(l)
	return "http://" + l.Addr().String(), nil
}

// Close stops the proxy.
func (p *Proxy) Close() error {
	if p.srv != nil {
		return p.srv.Close()
	}
	return nil
}

// ThrottleFor throttles every call for d.
func (p *Proxy) ThrottleFor(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.until = time.Now().Add(d)
}

// ThrottleNext throttles the next n calls.
func (p *Proxy) ThrottleNext(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next = n
}

// ThrottleMatching throttles the next n calls whose request body contains
// substr (for example a value only one kind of write carries).
func (p *Proxy) ThrottleMatching(substr string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.match, p.matchN = substr, n
}

// AfterForward calls f with the body of every call once DynamoDB answered
// it (a soak uses it to crash the sender right after its claim).
func (p *Proxy) AfterForward(f func(body []byte)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.after = f
}

// Throttled counts the calls answered with a throttling error.
func (p *Proxy) Throttled() int64 { return p.throttled.Load() }

// Outcomes of a call.
const (
	OK                = "ok"                 // answered 2xx by the target
	ConditionalFailed = "conditional-failed" // ConditionalCheckFailedException: billed like a write that succeeded
	ThrottledOutcome  = "throttled"          // answered by the proxy: never reached the target, not billed
	Failed            = "error"              // any other error answer of the target
)

// Call is one kind of request through the proxy.
type Call struct {
	// Caller is the application id in the request's User-Agent ("app/<id>",
	// set by the SDK from AWS_SDK_UA_APP_ID); "" when there is none.
	Caller string
	// Op is the operation named by X-Amz-Target (DynamoDB_20120810.GetItem:
	// "GetItem"); "" when the header is missing.
	Op      string
	Outcome string
}

// Calls returns how many requests of each kind the proxy has seen so far.
func (p *Proxy) Calls() map[Call]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.calls)
}

// MeasureCapacity makes the proxy add ReturnConsumedCapacity TOTAL to
// every item read and write it forwards, and add up the capacity units
// the target reports (Capacity). The callers' own requests are otherwise
// unchanged, and they ignore the extra field in the answer.
func (p *Proxy) MeasureCapacity() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.measure = true
}

// Capacity returns the capacity units the target reported, by kind of
// call (MeasureCapacity; dynalite reports them as DynamoDB bills a
// request: by item size, the larger of before and after for a write,
// nothing for a failed condition).
func (p *Proxy) Capacity() map[Call]float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.units)
}

func (p *Proxy) count(c Call, units float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.calls == nil {
		p.calls, p.units = map[Call]int64{}, map[Call]float64{}
	}
	p.calls[c]++
	if units > 0 {
		p.units[c] += units
	}
}

// itemOps are the operations whose capacity MeasureCapacity asks for.
var itemOps = map[string]bool{"GetItem": true, "PutItem": true, "UpdateItem": true, "DeleteItem": true}

// withCapacity adds ReturnConsumedCapacity TOTAL to a JSON request body.
func withCapacity(body []byte) []byte {
	if !bytes.HasPrefix(body, []byte("{")) || bytes.Contains(body, []byte(`"ReturnConsumedCapacity"`)) {
		return body
	}
	field := `"ReturnConsumedCapacity":"TOTAL"`
	if !bytes.Equal(bytes.TrimSpace(body[1:]), []byte("}")) {
		field += ","
	}
	return append([]byte("{"+field), body[1:]...)
}

// consumed reads ConsumedCapacity.CapacityUnits from an answer.
func consumed(answer []byte) float64 {
	var out struct {
		ConsumedCapacity struct{ CapacityUnits float64 }
	}
	if json.Unmarshal(answer, &out) != nil {
		return 0
	}
	return out.ConsumedCapacity.CapacityUnits
}

// AppID is the application id in an AWS SDK User-Agent ("app/<id>"), or "".
func AppID(userAgent string) string {
	for _, f := range strings.Fields(userAgent) {
		if id, ok := strings.CutPrefix(f, "app/"); ok {
			return id
		}
	}
	return ""
}

// outcomeRecorder notes the status of a forwarded answer and the start of
// an error body, where the error's __type is (and, with keep, the whole
// of a successful one).
type outcomeRecorder struct {
	http.ResponseWriter
	status int
	head   []byte
	keep   bool
	body   []byte
}

func (o *outcomeRecorder) WriteHeader(code int) {
	if o.status == 0 {
		o.status = code
	}
	o.ResponseWriter.WriteHeader(code)
}

func (o *outcomeRecorder) Write(b []byte) (int, error) {
	if o.status == 0 {
		o.status = http.StatusOK
	}
	if o.status >= 300 && len(o.head) < 512 {
		o.head = append(o.head, b[:min(len(b), 512-len(o.head))]...)
	}
	if o.keep && o.status < 300 && len(o.body) < 16<<20 { // SQS: 10 messages of up to 1 MiB
		o.body = append(o.body, b...)
	}
	return o.ResponseWriter.Write(b)
}

func (o *outcomeRecorder) Unwrap() http.ResponseWriter { return o.ResponseWriter }

func (o *outcomeRecorder) outcome() string {
	switch {
	case o.status == 0 || o.status < 300:
		return OK
	case bytes.Contains(o.head, []byte("ConditionalCheckFailedException")):
		return ConditionalFailed
	default:
		return Failed
	}
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	p.mu.Lock()
	throttle := time.Now().Before(p.until) || p.next > 0
	if p.next > 0 {
		p.next--
	}
	if !throttle && p.matchN > 0 && bytes.Contains(body, []byte(p.match)) {
		throttle = true
		p.matchN--
	}
	after, measure := p.after, p.measure
	refuse, down, delay := p.refuse, p.down, p.delay
	p.mu.Unlock()
	call := Call{Caller: AppID(r.Header.Get("User-Agent")), Op: op(r.Header.Get("X-Amz-Target"))}
	isSQS := strings.HasPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
	if delay > 0 {
		time.Sleep(delay)
	}
	if down {
		call.Outcome = Failed
		p.count(call, 0)
		internalError(w, r.Header.Get("X-Amz-Target"), "service unavailable (faultproxy)")
		return
	}
	if refuse != nil && (call.Op == "SendMessage" || call.Op == "SendMessageBatch") {
		fwd, answer, handled := p.refuseSend(w, r, call, body, refuse)
		if handled {
			call.Outcome = OK // answered as SQS would, partial failures in it
			if answer == nil {
				call.Outcome = Failed
			}
			p.count(call, 0)
			p.countSQS(call.Caller, call.Op, body, answer, answer != nil)
			return
		}
		body = fwd
	}
	if !throttle {
		capacity := measure && itemOps[call.Op]
		rec := &outcomeRecorder{ResponseWriter: w, keep: capacity || (isSQS && countsAnswer(call.Op))}
		if capacity {
			b := withCapacity(body)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
			r.Header.Set("Content-Length", strconv.Itoa(len(b)))
		}
		p.rp.ServeHTTP(rec, r)
		call.Outcome = rec.outcome()
		units := 0.0
		if capacity && call.Outcome == OK {
			units = consumed(rec.body)
		}
		p.count(call, units)
		if isSQS {
			p.countSQS(call.Caller, call.Op, body, rec.body, call.Outcome == OK)
		}
		if call.Outcome == OK {
			p.keep(call, body)
		}
		if after != nil {
			after(body)
		}
		return
	}
	call.Outcome = ThrottledOutcome
	p.count(call, 0)
	p.throttled.Add(1)
	answer := []byte(`{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded (faultproxy)"}`)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	// The DynamoDB client checks this CRC of every answer.
	w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(answer)), 10))
	w.WriteHeader(http.StatusBadRequest)
	w.Write(answer)
}

// op is the operation of an X-Amz-Target header ("Service.Op").
func op(target string) string { return target[strings.LastIndexByte(target, '.')+1:] }
