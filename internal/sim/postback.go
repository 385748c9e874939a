package sim

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"
)

// postback is one notification in flight.
type postback struct {
	gen        int
	trackingID string
	ref        string // as sent: "" when omitted
	omitted    bool   // CLIENT_REFERENCE left out on purpose
	code       string
	body       []byte
	redelivery bool
	early      bool // delivered before the send's answer
	at         time.Duration
}

// est is the offset in Skycore's documented timestamps.
var est = time.FixedZone("EST", -5*3600)

// carriers are SPIDs from APPENDIX E, chosen per number.
var carriers = []string{"0001470", "0001570", "0001890", "0001650"}

// final reports whether a postback code is a delivery receipt (the second
// notification, which not every carrier sends).
func final(code string) bool {
	return code == "N102" || code == "E102" || code == "N202" || code == "E202"
}

// plan builds the scenario's postbacks for an accepted message, each with
// its delay; carriers that send no receipt, or nothing, thin them out.
func (s *Server) plan(acc *result, tid, ref string, sc Scenario) []*postback {
	steps := scenarioSteps[sc]
	spid := CarrierOf(acc.to)
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Contains(s.cfg.SilentCarriers, spid) {
		return nil
	}
	if slices.Contains(s.cfg.NoReceiptCarriers, spid) {
		steps = slices.DeleteFunc(slices.Clone(steps), func(st step) bool { return final(st.code) })
	}
	delay, gen := time.Duration(s.cfg.PostbackDelay), s.gen
	reorder := len(steps) > 1 && s.cfg.ReorderRate > 0 && s.rng.Float64() < s.cfg.ReorderRate
	var out []*postback
	for i, st := range steps {
		at := delay * time.Duration(i+1)
		if reorder {
			at = delay * time.Duration(len(steps)-i)
		}
		r := ref
		omit := ref != "" && s.cfg.OmitClientReferenceRate > 0 && s.rng.Float64() < s.cfg.OmitClientReferenceRate
		if s.cfg.OmitReferenceFromReceiptsOnly && !final(st.code) {
			omit = false
		}
		if s.cfg.ReferenceOnLostAnswers && (s.keepRef[ref] || s.keepAll) {
			omit = false
		}
		if omit {
			r = ""
		}
		out = append(out, &postback{gen: gen, trackingID: tid, ref: r, omitted: omit, code: st.code, at: at,
			body: postbackXML(st, acc, tid, r, spid, time.Now().Add(at))})
	}
	slices.SortStableFunc(out, func(a, b *postback) int { return cmp.Compare(a.at, b.at) })
	return out
}

// schedule queues postbacks after their delays.
func (s *Server) schedule(pbs []*postback) {
	s.mu.Lock()
	url := s.cfg.PostbackURL
	s.mu.Unlock()
	if url == "" {
		return
	}
	for _, pb := range pbs {
		s.enqueue(pb, 0, pb.at)
	}
}

// deliverNow makes pb's first attempt in the caller's goroutine (a
// postback that beats the send's answer); retries are scheduled as usual.
func (s *Server) deliverNow(pb *postback) {
	s.mu.Lock()
	url := s.cfg.PostbackURL
	if url != "" {
		s.npending++
	}
	s.mu.Unlock()
	if url == "" {
		return
	}
	pb.early = true
	s.deliver(pb, 0)
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
		Code: pb.code, Attempt: attempt, Redelivery: pb.redelivery, OmittedClientReference: pb.omitted,
		BeforeAnswer: pb.early && attempt == 0 && !pb.redelivery}
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
		again.redelivery, again.early = true, false
		s.enqueue(&again, 0, 10*time.Millisecond)
	}
}
