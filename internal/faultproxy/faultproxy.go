// Package faultproxy sits in front of a local AWS stand-in (dynalite) and
// answers some calls itself with a DynamoDB throttling error, so that the
// real SDK's retries and mmsgate's handling of them run.
package faultproxy

import (
	"bytes"
	"hash/crc32"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
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
	after := p.after
	p.mu.Unlock()
	if !throttle {
		p.rp.ServeHTTP(w, r)
		if after != nil {
			after(body)
		}
		return
	}
	p.throttled.Add(1)
	answer := []byte(`{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded (faultproxy)"}`)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	// The DynamoDB client checks this CRC of every answer.
	w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(answer)), 10))
	w.WriteHeader(http.StatusBadRequest)
	w.Write(answer)
}
