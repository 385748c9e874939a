package sim

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// APIPath is where the simulator serves the API, as Skycore does.
const APIPath = "/API/wxml/1.3/index.php"

// maxBody bounds a request the simulator reads.
const maxBody = 1 << 20

// Request is one API request as the simulator saw it.
type Request struct {
	Seq             int               `json:"seq"`
	Time            time.Time         `json:"time"`
	Method          string            `json:"method"`
	Raw             string            `json:"raw"`
	Fields          map[string]string `json:"fields,omitempty"`
	ClientReference string            `json:"clientReference"`
	To              string            `json:"to"`
	MMSID           string            `json:"mmsId"`
	Code            string            `json:"code"` // "" on success
	Info            string            `json:"info,omitempty"`
	Fault           string            `json:"fault,omitempty"`
	TrackingID      string            `json:"trackingId"`
	From            string            `json:"from,omitempty"`
	Scenario        Scenario          `json:"scenario,omitempty"`
	Warnings        []string          `json:"warnings,omitempty"`
	// Accepted: Skycore queued the message (it has a tracking id and its
	// postbacks are scheduled), whatever the caller got back: with an
	// accept-hang or accept-reset fault the caller saw no answer.
	Accepted bool `json:"accepted"`
	// Carrier is the SPID of the accepted message's postbacks.
	Carrier string `json:"carrier,omitempty"`
	// Throttled: refused by the account's throughput limit (E113) or
	// E106's interval (Config.RateLimit, MinInterval), not by a fault.
	Throttled bool `json:"throttled,omitempty"`
}

// PostbackAttempt is one POST of a postback to the receiver.
type PostbackAttempt struct {
	Time            time.Time `json:"time"`
	TrackingID      string    `json:"trackingId"`
	ClientReference string    `json:"clientReference"`
	Code            string    `json:"code"`
	Attempt         int       `json:"attempt"` // 0 is the first try
	Status          int       `json:"status"`  // 0: no answer
	Error           string    `json:"error,omitempty"`
	Accepted        bool      `json:"accepted"`
	Dropped         bool      `json:"dropped,omitempty"` // retries exhausted
	Redelivery      bool      `json:"redelivery,omitempty"`
	// OmittedClientReference: CLIENT_REFERENCE was left out on purpose
	// (ClientReference is then "").
	OmittedClientReference bool `json:"omittedClientReference,omitempty"`
	// BeforeAnswer: this attempt was made before the send's answer.
	BeforeAnswer bool `json:"beforeAnswer,omitempty"`
}

// Counts says how often each CLIENT_REFERENCE and TO was accepted (a send)
// and received (any request).
type Counts struct {
	Accepted   map[string]int `json:"accepted"`
	AcceptedTo map[string]int `json:"acceptedTo"`
	Received   map[string]int `json:"received"`
}

// Server is the simulator. Use Handler with any HTTP server, or Start.
type Server struct {
	mu        sync.Mutex
	cfg       Config
	rng       *rand.Rand
	requests  []Request
	postbacks []PostbackAttempt
	tracking  map[string]bool
	// trackingSalt shifts every tracking id's characters by a per-process
	// random amount: ids differ across restarts (a restarted simulator
	// under `make dev PERSIST=1` must not hand out a tracking id the kept
	// table already links to another request), while the seeded rng draws
	// exactly what it drew before, so faults and mixes stay repeatable.
	trackingSalt [13]int
	counts       Counts
	gen          int // bumped by Reset: older scheduled postbacks are dropped
	npending     int

	onAccept func(Request)
	keepRef  map[string]bool // references whose postbacks always carry them
	keepAll  bool            // every send accepted now keeps its reference
	optedOut map[string]bool // number@code that wrote STOP (mo.go): sends answer E114
	slots    chan struct{}   // postbacks in flight
	outages  []window        // absolute outage windows
	born     time.Time
	listener net.Listener // nil when not started with Start
	addr     string
	refused  bool // the listener is closed for a refused outage
	limit    *throughput

	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc
	srv    *http.Server
}

// New returns a simulator for cfg.
func New(cfg Config) (*Server, error) {
	d := Default()
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = d.RetryInterval
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = d.MaxRetries
	}
	if cfg.PostbackTimeout == 0 {
		cfg.PostbackTimeout = d.PostbackTimeout
	}
	if cfg.PostbackConcurrency <= 0 {
		cfg.PostbackConcurrency = d.PostbackConcurrency
	}
	if len(cfg.Accounts) == 0 {
		cfg.Accounts = d.Accounts
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:          cfg,
		rng:          rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed)),
		tracking:     map[string]bool{},
		trackingSalt: newTrackingSalt(),
		optedOut:     map[string]bool{},
		client:       &http.Client{Timeout: time.Duration(cfg.PostbackTimeout)},
		ctx:          ctx,
		cancel:       cancel,
		slots:        make(chan struct{}, cfg.PostbackConcurrency),
		born:         time.Now(),
		limit:        newThroughput(cfg.RateLimit, time.Duration(cfg.MinInterval)),
	}
	for _, o := range cfg.Outages {
		s.addOutage(o, s.born)
	}
	s.resetCounts()
	return s, nil
}

// Start serves on addr ("127.0.0.1:0" picks a free port) and returns the
// base URL.
func (s *Server) Start(addr string) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.listener, s.addr = l, l.Addr().String()
	s.mu.Unlock()
	go s.srv.Serve(l)
	return "http://" + s.addr, nil
}

// Close stops the server, releases hanging requests and drops pending
// postbacks.
func (s *Server) Close() error {
	s.cancel()
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.srv.Shutdown(ctx)
	}
	return nil
}

// Handler serves the API and /_sim/.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(APIPath, s.api)
	mux.HandleFunc("/API/wxml/1.3/", s.api)
	mux.HandleFunc("GET /_sim/requests", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.Requests()) })
	mux.HandleFunc("GET /_sim/postbacks", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.Postbacks()) })
	mux.HandleFunc("GET /_sim/counts", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.Counts()) })
	mux.HandleFunc("GET /_sim/throughput", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.Throughput()) })
	mux.HandleFunc("GET /_sim/pending", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, map[string]int{"pending": s.Pending()}) })
	mux.HandleFunc("POST /_sim/reset", func(w http.ResponseWriter, r *http.Request) { s.Reset(); w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /_sim/config", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.Config()) })
	mux.HandleFunc("PUT /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		var f []Fault
		if decodeJSON(w, r, &f) {
			if err := s.SetFaults(f); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}
	})
	mux.HandleFunc("PUT /_sim/scenarios", func(w http.ResponseWriter, r *http.Request) {
		var sc Scenarios
		if decodeJSON(w, r, &sc) {
			if err := s.SetScenarios(sc); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}
	})
	mux.HandleFunc("PUT /_sim/latency", func(w http.ResponseWriter, r *http.Request) {
		var l Latency
		if decodeJSON(w, r, &l) {
			s.SetLatency(l)
			w.WriteHeader(http.StatusNoContent)
		}
	})
	mux.HandleFunc("PUT /_sim/outage", func(w http.ResponseWriter, r *http.Request) {
		var o Outage
		if decodeJSON(w, r, &o) {
			if err := s.StartOutage(o); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}
	})
	mux.HandleFunc("PUT /_sim/postback-url", func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			URL string `json:"url"`
		}
		if decodeJSON(w, r, &v) {
			s.SetPostbackURL(v.URL)
			w.WriteHeader(http.StatusNoContent)
		}
	})
	s.moRoutes(mux)
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func decodeJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	d := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

// api answers one sendSavedMMS call.
func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	raw, tree, perr := readRequest(r)
	rec := Request{Time: time.Now().UTC(), Method: r.Method, Raw: string(raw)}
	if tree != nil {
		rec.Fields = tree.flatten()
		rec.ClientReference = strings.TrimSpace(rec.Fields["CLIENT_REFERENCE"])
		rec.To = strings.TrimSpace(rec.Fields["TO"])
		rec.MMSID = strings.TrimSpace(rec.Fields["MMSID"])
	}

	if kind := s.outageNow(); kind != "" {
		rec.Fault, rec.Code = "outage-"+kind, "outage-"+kind
		if kind == "E503" {
			rec.Code = "E503"
			rec.Info = fail("E503").info
		}
		s.record(rec)
		s.injectOutage(w, r, kind)
		return
	}

	// The account's limit is Skycore's own answer, before anything else
	// looks at the request (a fault stands for the network or the vendor
	// misbehaving, after it).
	var key string
	if tree != nil {
		key, _ = tree.text("API_KEY")
	}
	if code := s.limit.admit(time.Now(), key); code != "" {
		f := fail(code)
		if code == "E106" {
			f = fail("E106", max(int((time.Duration(s.cfg.MinInterval)+time.Second-1)/time.Second), 1))
		}
		rec.Code, rec.Info, rec.Throttled = code, f.info, true
		s.record(rec)
		writeFailure(w, f, "")
		return
	}

	s.mu.Lock()
	latency := s.cfg.Latency.draw(s.rng)
	fault := s.pickFault(rec)
	s.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
		case <-s.ctx.Done():
		}
	}
	if fault != nil && !fault.afterAccept() {
		rec.Fault = fault.Kind
		rec.Code = fault.Kind
		if strings.HasPrefix(fault.Kind, "E") {
			f := fail(fault.Kind)
			if fault.Kind == "E106" {
				f = fail("E106", max(fault.Seconds, 1))
			}
			rec.Info = f.info
			s.record(rec)
			writeFailure(w, f, "")
			return
		}
		s.record(rec)
		s.injectTransport(w, r, fault.Kind)
		return
	}

	f, acc, _ := s.process(tree, perr)
	if f == nil && s.OptedOut(acc.to, acc.from) { // the number wrote STOP to this code (mo.go)
		f = fail("E114")
	}
	if f != nil {
		rec.Code, rec.Info = f.code, f.info
		if acc != nil {
			rec.Warnings = acc.warnings
		}
		s.record(rec)
		to := ""
		if f.code != "E621" && f.code != "E100" && f.code != "E101" && f.code != "E102" && f.code != "E104" && f.code != "E108" {
			to = rec.To
		}
		writeFailure(w, f, to)
		return
	}
	s.mu.Lock()
	tid := s.newTrackingID()
	if fault != nil && fault.Kind == "accept-longtid" {
		tid = longTrackingID(tid)
	}
	scenario := s.cfg.Scenarios.pick(s.cfg.Seed, acc.to, acc.mmsID, rec.ClientReference)
	early := s.cfg.EarlyPostbackRate > 0 && s.rng.Float64() < s.cfg.EarlyPostbackRate
	s.mu.Unlock()
	rec.TrackingID, rec.From, rec.Scenario, rec.Warnings = tid, acc.from, scenario, acc.warnings
	rec.Accepted, rec.Carrier = true, CarrierOf(acc.to)
	if fault != nil {
		rec.Fault = fault.Kind
	}
	s.record(rec)
	s.mu.Lock()
	hook := s.onAccept
	s.mu.Unlock()
	if hook != nil {
		hook(rec) // before the answer is written: "accepted, not yet told"
	}
	if fault != nil && fault.afterAccept() {
		s.KeepReference(rec.ClientReference)
	}
	pbs := s.plan(acc, tid, rec.ClientReference, scenario)
	if early && len(pbs) > 0 {
		first := pbs[0]
		for _, pb := range pbs[1:] {
			pb.at -= first.at
		}
		s.schedule(pbs[1:])
		s.deliverNow(first)
	} else {
		s.schedule(pbs)
	}

	if fault != nil && fault.Kind != "accept-longtid" && fault.Kind != "accept-hang" && fault.Kind != "accept-reset" {
		writeOdd(w, fault.Kind, acc, tid)
		return
	}
	if fault != nil && fault.Kind != "accept-longtid" { // accepted, but the caller never hears it
		if fault.Kind == "accept-reset" {
			s.injectTransport(w, r, "reset")
			return
		}
		wait := time.Duration(fault.Delay)
		if wait <= 0 {
			wait = 24 * time.Hour
		}
		select {
		case <-time.After(wait):
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		}
	}

	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<RESPONSE>")
	xmlElem(&b, "STATUS", "Success")
	xmlElem(&b, "MMSID", fmt.Sprint(acc.mmsID))
	xmlElem(&b, "TRACKINGID", tid)
	xmlElem(&b, "TO", acc.to)
	xmlElem(&b, "FROM", acc.from)
	xmlElem(&b, "STATUSDETAILS", "MMS request accepted and queued for delivery")
	b.WriteString("</RESPONSE>\n")
	w.Header().Set("Content-Type", "text/xml; charset=UTF-8")
	w.Write(b.Bytes())
}

// writeOdd answers an accepted send in one of the odd forms of the
// accept-* faults (Fault.Kind): each says Skycore took it, and more.
func writeOdd(w http.ResponseWriter, kind string, acc *result, tid string) {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	root := "RESPONSE"
	if kind == "accept-oddroot" {
		root = "SKYCORE"
	}
	b.WriteString("<" + root + ">")
	xmlElem(&b, "STATUS", "Success")
	xmlElem(&b, "MMSID", fmt.Sprint(acc.mmsID))
	xmlElem(&b, "TRACKINGID", tid)
	switch kind {
	case "accept-errorcode":
		xmlElem(&b, "ERRORCODE", "E110")
		xmlElem(&b, "ERRORINFO", "Invalid receiver number")
	case "accept-twostatus":
		xmlElem(&b, "STATUS", "Failure")
	case "accept-oversize":
		xmlElem(&b, "STATUSDETAILS", "MMS request accepted and queued for delivery"+strings.Repeat(" ", oversize))
	}
	xmlElem(&b, "TO", acc.to)
	b.WriteString("</" + root + ">\n")
	w.Header().Set("Content-Type", "text/xml; charset=UTF-8")
	w.Write(b.Bytes())
}

// oversize pads accept-oversize's answer past the 64 KiB a client reads.
const oversize = 80 << 10

// longTrackingID stretches tid to LongTrackingIDBytes, still unique.
func longTrackingID(tid string) string {
	pad := LongTrackingIDBytes - len(tid) - 1
	return tid + "-" + strings.Repeat(trackingAlphabet, pad/len(trackingAlphabet)+1)[:pad]
}

// outcome of process: a failure, or the accepted message and its account.
type result struct {
	*accepted
	warnings []string
}

func (s *Server) process(tree *node, perr *failure) (*failure, *result, *Account) {
	if perr != nil {
		return perr, nil, nil
	}
	if tree.Name != "REQUEST" {
		return fail("E100"), nil, nil
	}
	action, ok := tree.text("ACTION")
	switch {
	case !ok || strings.TrimSpace(action) == "":
		return fail("E101"), nil, nil
	case !strings.EqualFold(strings.TrimSpace(action), "sendSavedMMS"):
		return &failure{code: "E101", info: "Invalid action."}, nil, nil
	}
	key, _ := tree.text("API_KEY")
	key = strings.TrimSpace(key)
	if key == "" {
		return fail("E102"), nil, nil
	}
	s.mu.Lock()
	var acct *Account
	for i := range s.cfg.Accounts {
		if s.cfg.Accounts[i].APIKey == key {
			a := s.cfg.Accounts[i]
			acct = &a
		}
	}
	s.mu.Unlock()
	if acct == nil {
		return fail("E104"), nil, nil
	}
	acc, f, warnings := acct.check(tree)
	if f != nil {
		return f, &result{warnings: warnings}, acct
	}
	return nil, &result{accepted: acc, warnings: warnings}, acct
}

// readRequest accepts the xml= form post, a raw XML body, a form of
// parameters, and GET with lower-case parameters.
func readRequest(r *http.Request) ([]byte, *node, *failure) {
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		if len(q) == 0 {
			return nil, nil, fail("E100")
		}
		if x := q.Get("xml"); x != "" {
			return parseXMLBody([]byte(x))
		}
		return []byte(r.URL.RawQuery), fromParams(q), nil
	}
	if r.Method != http.MethodPost {
		return nil, nil, fail("E100")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		return body, nil, fail("E100")
	}
	trimmed := bytes.TrimSpace(body)
	if bytes.HasPrefix(trimmed, []byte("<")) {
		return parseXMLBody(trimmed)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return body, nil, fail("E100")
	}
	if x, ok := form["xml"]; ok {
		return parseXMLBody([]byte(x[0]))
	}
	if form.Get("action") != "" || form.Get("ACTION") != "" {
		return body, fromParams(form), nil
	}
	return body, nil, fail("E100")
}

func parseXMLBody(doc []byte) ([]byte, *node, *failure) {
	tree, err := parseTree(doc)
	if err != nil {
		return doc, nil, fail("E108", err.Error())
	}
	return doc, tree, nil
}

func writeFailure(w http.ResponseWriter, f *failure, to string) {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<RESPONSE>")
	xmlElem(&b, "STATUS", "Failure")
	xmlElem(&b, "ERRORCODE", f.code)
	if to != "" {
		xmlElem(&b, "TO", to)
	}
	xmlElem(&b, "ERRORINFO", f.info)
	b.WriteString("</RESPONSE>\n")
	w.Header().Set("Content-Type", "text/xml; charset=UTF-8")
	w.Write(b.Bytes())
}

func xmlElem(b *bytes.Buffer, name, text string) {
	b.WriteString("<" + name + ">")
	xml.EscapeText(b, []byte(text))
	b.WriteString("</" + name + ">")
}

func (s *Server) injectTransport(w http.ResponseWriter, r *http.Request, kind string) {
	switch kind {
	case "http500", "http502", "http503":
		code := map[string]int{"http500": 500, "http502": 502, "http503": 503}[kind]
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(code)
		fmt.Fprintf(w, "<html><head><title>%d %s</title></head><body><h1>%s</h1></body></html>", code, http.StatusText(code), http.StatusText(code))
	case "html":
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<!DOCTYPE html><html><head><title>Scheduled maintenance</title></head><body>Back soon</body></html>")
	case "hang":
		select {
		case <-r.Context().Done():
		case <-s.ctx.Done():
		}
	case "reset", "truncate":
		hj, ok := w.(http.Hijacker)
		if !ok {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		conn, buf, err := hj.Hijack()
		if err != nil {
			return
		}
		if kind == "truncate" {
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 400\r\n\r\n<RESPONSE><STATUS>Succ")
			buf.Flush()
		} else if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST instead of FIN
		}
		conn.Close()
	}
}

// pickFault returns the first fault that hits rec; s.mu is held.
func (s *Server) pickFault(rec Request) *Fault {
	for i := range s.cfg.Faults {
		f := &s.cfg.Faults[i]
		var mmsID int64
		fmt.Sscan(rec.MMSID, &mmsID)
		if !f.Match.matches(rec.To, mmsID, rec.ClientReference) {
			continue
		}
		if f.Count > 0 && f.hits >= f.Count {
			continue
		}
		if f.Rate > 0 && s.rng.Float64() >= f.Rate {
			continue
		}
		f.hits++
		c := *f
		return &c
	}
	return nil
}

const trackingAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newTrackingID makes an opaque id shaped like "DrXAFP-Ylpc-JZL"; s.mu held.
func (s *Server) newTrackingID() string {
	for {
		b := make([]byte, 0, 15)
		k := 0
		for i, n := range []int{6, 4, 3} {
			if i > 0 {
				b = append(b, '-')
			}
			for range n {
				b = append(b, trackingAlphabet[(s.rng.IntN(len(trackingAlphabet))+s.trackingSalt[k])%len(trackingAlphabet)])
				k++
			}
		}
		if id := string(b); !s.tracking[id] {
			s.tracking[id] = true
			return id
		}
	}
}

// newTrackingSalt draws the per-process shifts of newTrackingID from the
// operating system's randomness.
func newTrackingSalt() (salt [13]int) {
	var b [13]byte
	crand.Read(b[:]) // never fails (crypto/rand panics rather)
	for i := range salt {
		salt[i] = int(b[i]) % len(trackingAlphabet)
	}
	return salt
}

func (s *Server) record(rec Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.Seq = len(s.requests) + 1
	s.requests = append(s.requests, rec)
	if rec.ClientReference != "" {
		s.counts.Received[rec.ClientReference]++
	}
	if rec.Accepted {
		if rec.ClientReference != "" {
			s.counts.Accepted[rec.ClientReference]++
		}
		s.counts.AcceptedTo[rec.To]++
	}
}

func (s *Server) resetCounts() {
	s.counts = Counts{Accepted: map[string]int{}, AcceptedTo: map[string]int{}, Received: map[string]int{}}
}

// Requests returns a copy of every request received.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Postbacks returns a copy of every postback attempt.
func (s *Server) Postbacks() []PostbackAttempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]PostbackAttempt(nil), s.postbacks...)
}

// Counts returns the accepted and received counts.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := Counts{Accepted: map[string]int{}, AcceptedTo: map[string]int{}, Received: map[string]int{}}
	for k, v := range s.counts.Accepted {
		c.Accepted[k] = v
	}
	for k, v := range s.counts.AcceptedTo {
		c.AcceptedTo[k] = v
	}
	for k, v := range s.counts.Received {
		c.Received[k] = v
	}
	return c
}

// Reset clears the records and drops postbacks not yet sent.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests, s.postbacks = nil, nil
	s.optedOut = map[string]bool{}
	s.resetCounts()
	s.limit.reset()
	s.gen++
	for i := range s.cfg.Faults {
		s.cfg.Faults[i].hits = 0
	}
}

// Config returns the configuration in force.
func (s *Server) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// SetFaults replaces the fault rules.
func (s *Server) SetFaults(f []Fault) error {
	for _, x := range f {
		if !faultKinds[x.Kind] {
			return fmt.Errorf("unknown fault kind %q", x.Kind)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.Faults = append([]Fault(nil), f...)
	return nil
}

// SetScenarios replaces the scenario rules.
func (s *Server) SetScenarios(sc Scenarios) error {
	if err := sc.check(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.Scenarios = sc
	return nil
}

// SetLatency replaces the latency added to every answer.
func (s *Server) SetLatency(l Latency) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.Latency = l
}

// KeepReference marks sends whose answer the caller will not hear: with
// ReferenceOnLostAnswers, their postbacks always carry CLIENT_REFERENCE.
func (s *Server) KeepReference(refs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keepRef == nil {
		s.keepRef = map[string]bool{}
	}
	for _, r := range refs {
		s.keepRef[r] = true
	}
}

// KeepReferences, while on, makes every send accepted keep CLIENT_REFERENCE
// on its postbacks (with ReferenceOnLostAnswers): for a stretch in which
// answers may be lost in ways the simulator cannot see (the caller's
// database refusing its writes, the caller killed).
func (s *Server) KeepReferences(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keepAll = on
}

// OnAccept calls f for every accepted request before its answer is sent
// (a soak uses it to crash the sender between Skycore's acceptance and the
// sender's bookkeeping).
func (s *Server) OnAccept(f func(Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onAccept = f
}

// SetPostbackURL points postbacks at u ("" turns them off).
func (s *Server) SetPostbackURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.PostbackURL = u
}

// SetDuplicateRate and SetReorderRate change the postback disorder (0-1).
func (s *Server) SetDuplicateRate(r float64) { s.mu.Lock(); s.cfg.DuplicateRate = r; s.mu.Unlock() }

// SetReorderRate sends a message's later postback first this often (0-1).
func (s *Server) SetReorderRate(r float64) { s.mu.Lock(); s.cfg.ReorderRate = r; s.mu.Unlock() }

// Pending is the number of postbacks scheduled or being retried.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.npending
}

// WaitIdle waits until no postback is pending or ctx ends.
func (s *Server) WaitIdle(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for s.Pending() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
