package sim

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"time"
)

// postback is one notification in flight.
type postback struct {
	gen        int
	trackingID string
	ref        string
	code       string
	body       []byte
	redelivery bool
}

// est is the offset in Skycore's documented timestamps.
var est = time.FixedZone("EST", -5*3600)

// carriers are SPIDs from APPENDIX E, chosen per number.
var carriers = []string{"0001470", "0001570", "0001890", "0001650"}

// schedule queues the scenario's postbacks for an accepted message.
func (s *Server) schedule(acct *Account, acc *result, tid, ref string, sc Scenario) {
	steps := scenarioSteps[sc]
	s.mu.Lock()
	url, delay, gen := s.cfg.PostbackURL, time.Duration(s.cfg.PostbackDelay), s.gen
	reorder := len(steps) > 1 && s.cfg.ReorderRate > 0 && s.rng.Float64() < s.cfg.ReorderRate
	s.mu.Unlock()
	if url == "" || len(steps) == 0 {
		return
	}
	spid := carriers[hash(0, acc.to)%uint64(len(carriers))]
	for i, st := range steps {
		at := delay * time.Duration(i+1)
		if reorder {
			at = delay * time.Duration(len(steps)-i)
		}
		pb := &postback{gen: gen, trackingID: tid, ref: ref, code: st.code,
			body: postbackXML(st, acc, tid, ref, spid, time.Now().Add(at))}
		s.enqueue(pb, 0, at)
	}
}

// postbackXML builds one notification in Skycore's documented shape.
func postbackXML(st step, acc *result, tid, ref, spid string, at time.Time) []byte {
	var b bytes.Buffer
	b.WriteString("<?xml version='1.0'?>\n<POSTBACK>")
	origin := "MMS_MT"
	xmlElem(&b, "ORIGIN", origin)
	xmlElem(&b, "CODE", st.code)
	if st.sentAs != "" {
		xmlElem(&b, "SENTAS", st.sentAs)
	}
	status := st.status
	if status == "" {
		status = "Message Sent"
	}
	xmlElem(&b, "STATUS", status)
	if st.code != "N202" && st.code != "E202" { // the documented fallback receipt has no MMSID
		xmlElem(&b, "MMSID", fmt.Sprint(acc.mmsID))
	}
	xmlElem(&b, "FROM", acc.from)
	xmlElem(&b, "TO", acc.to)
	xmlElem(&b, "TRACKINGID", tid)
	xmlElem(&b, "SPID", spid)
	if st.code != "E101" { // the documented E101 example has no TIMESTAMP
		xmlElem(&b, "TIMESTAMP", at.In(est).Format("2006-01-02T15:04:05-07:00"))
	}
	switch st.code {
	case "N102":
		xmlElem(&b, "HANDSET", "motol7c")
		xmlElem(&b, "AGGREGATORID", "agg-"+tid)
	case "N202", "E102", "E202":
		xmlElem(&b, "AGGREGATORID", "agg-"+tid)
	}
	if st.details != "" {
		xmlElem(&b, "STATUSDETAILS", st.details)
	}
	if ref != "" {
		xmlElem(&b, "CLIENT_REFERENCE", ref)
	}
	b.WriteString("</POSTBACK>\n")
	return b.Bytes()
}

func (s *Server) enqueue(pb *postback, attempt int, after time.Duration) {
	s.mu.Lock()
	s.npending++
	s.mu.Unlock()
	time.AfterFunc(after, func() { s.deliver(pb, attempt) })
}

// deliver POSTs pb once; a non-200 answer or none within PostbackTimeout is
// retried after RetryInterval, at most MaxRetries times, then dropped.
func (s *Server) deliver(pb *postback, attempt int) {
	defer func() {
		s.mu.Lock()
		s.npending--
		s.mu.Unlock()
	}()
	s.mu.Lock()
	url, gen := s.cfg.PostbackURL, s.gen
	retryIn, maxRetries := time.Duration(s.cfg.RetryInterval), s.cfg.MaxRetries
	dupRate := s.cfg.DuplicateRate
	s.mu.Unlock()
	if s.ctx.Err() != nil || pb.gen != gen || url == "" {
		return
	}
	select { // wait for a delivery slot; the receiver's 10 s start with the POST
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-s.ctx.Done():
		return
	}
	rec := PostbackAttempt{Time: time.Now().UTC(), TrackingID: pb.trackingID, ClientReference: pb.ref,
		Code: pb.code, Attempt: attempt, Redelivery: pb.redelivery}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, bytes.NewReader(pb.body))
	if err == nil {
		req.Header.Set("Content-Type", "text/xml")
		var resp *http.Response
		resp, err = s.client.Do(req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			rec.Status = resp.StatusCode
		}
	}
	if err != nil {
		rec.Error = err.Error()
	}
	rec.Accepted = rec.Status == http.StatusOK
	retry := !rec.Accepted && attempt < maxRetries && s.ctx.Err() == nil
	rec.Dropped = !rec.Accepted && !retry
	s.mu.Lock()
	if pb.gen == s.gen {
		s.postbacks = append(s.postbacks, rec)
	}
	dup := rec.Accepted && !pb.redelivery && dupRate > 0 && s.rng.Float64() < dupRate
	s.mu.Unlock()
	switch {
	case retry:
		s.enqueue(pb, attempt+1, retryIn)
	case dup:
		again := *pb
		again.redelivery = true
		s.enqueue(&again, 0, 10*time.Millisecond)
	}
}
