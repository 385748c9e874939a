package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode"
)

// Inbound (MO) messages: POST /_sim/mo makes the simulator post an SMS MO
// (text) or MMS MO (subject, files) to the postback URL in Skycore's v1
// XML, with the same retries as delivery postbacks. Like Skycore's own
// keyword handling, an SMS whose first word is a CTIA opt-out keyword
// opts the number out of that code (sends from it answer E114) until an
// opt-in keyword. This is the simulator's own reading of Skycore's
// "Message Inbox Postbacks" page, kept apart from mmsgate's parser.

// MO is the body of POST /_sim/mo.
type MO struct {
	From    string   `json:"from"`              // the mobile number (digits)
	To      string   `json:"to"`                // the code written to
	Text    string   `json:"text,omitempty"`    // an SMS MO
	Subject string   `json:"subject,omitempty"` // an MMS MO (with files, or keyword)
	Files   []string `json:"files,omitempty"`
	Keyword string   `json:"keyword,omitempty"` // MMS: the inbox keyword matched (default "all")
	MMS     bool     `json:"mms,omitempty"`     // an MMS MO even with no subject or files
}

// MOResult is the answer of POST /_sim/mo.
type MOResult struct {
	Code string `json:"code"` // N211 or N401
	// ID is the TRANSACTIONID (SMS) or TRACKINGID (MMS) of the postback.
	ID string `json:"id"`
	// OptedOut says whether sends to From from To now answer E114.
	OptedOut bool   `json:"optedOut"`
	Body     string `json:"body"` // the postback XML
}

// Skycore's platform keywords (CTIA).
var (
	simOptOut = map[string]bool{"STOP": true, "STOPALL": true, "UNSUBSCRIBE": true, "CANCEL": true, "END": true, "QUIT": true}
	simOptIn  = map[string]bool{"START": true, "UNSTOP": true}
)

func optKey(to, from string) string { return to + "@" + from }

// firstWord is the message's first word, upper-cased, punctuation around
// it dropped.
func firstWord(text string) string {
	f := strings.Fields(text)
	if len(f) == 0 {
		return ""
	}
	return strings.ToUpper(strings.TrimFunc(f[0], func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }))
}

// OptedOut reports whether sends to number from code answer E114.
func (s *Server) OptedOut(number, code string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.optedOut[optKey(number, code)]
}

// OptOuts lists number@code of every opt-out in force.
func (s *Server) OptOuts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []string{}
	for k, on := range s.optedOut {
		if on {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// SendMO posts one inbound message to the postback URL (asynchronously,
// retried as delivery postbacks are) and applies its keyword.
func (s *Server) SendMO(mo MO) (*MOResult, error) {
	switch {
	case !allDigits(mo.From) || len(mo.From) < 7 || len(mo.From) > 15:
		return nil, fmt.Errorf("from %q: want the mobile number, 7-15 digits", mo.From)
	case !allDigits(mo.To):
		return nil, fmt.Errorf("to %q: want the short or long code, digits", mo.To)
	case mo.Text != "" && (mo.Subject != "" || len(mo.Files) > 0 || mo.MMS):
		return nil, fmt.Errorf("text is an SMS, subject and files an MMS: not both")
	}
	s.mu.Lock()
	url := s.cfg.PostbackURL
	id := s.moID(mo)
	s.mu.Unlock()
	if url == "" {
		return nil, fmt.Errorf("no postback URL (-postback-url, or PUT /_sim/postback-url)")
	}
	now := time.Now().In(est).Format("2006-01-02T15:04:05-07:00")
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<POSTBACK>")
	res := &MOResult{ID: id}
	if mo.Subject == "" && len(mo.Files) == 0 && !mo.MMS {
		res.Code = "N211"
		xmlElem(&b, "ORIGIN", "SMS_MO")
		xmlElem(&b, "CODE", "N211")
		xmlElem(&b, "FROM", mo.From)
		xmlElem(&b, "TO", mo.To)
		xmlElem(&b, "TEXT", mo.Text)
		xmlElem(&b, "RECEIVED", now)
		xmlElem(&b, "TRANSACTIONID", id)
	} else {
		res.Code = "N401"
		kw := mo.Keyword
		if kw == "" {
			kw = "all"
		}
		xmlElem(&b, "ORIGIN", "MMS_MO")
		xmlElem(&b, "CODE", "N401")
		xmlElem(&b, "FROM", mo.From)
		xmlElem(&b, "TO", mo.To)
		xmlElem(&b, "KEYWORD", kw)
		xmlElem(&b, "SUBJECT", mo.Subject)
		xmlElem(&b, "TRACKINGID", id)
		xmlElem(&b, "SPID", CarrierOf(mo.From))
		xmlElem(&b, "TIMESTAMP", now)
		b.WriteString("<CONTENT>")
		for _, f := range mo.Files {
			xmlElem(&b, "FILE", f)
		}
		b.WriteString("</CONTENT>")
	}
	b.WriteString("</POSTBACK>\n")
	res.Body = b.String()

	s.mu.Lock()
	if res.Code == "N211" { // Skycore's keywords are read from SMS
		switch w := firstWord(mo.Text); {
		case simOptOut[w]:
			s.optedOut[optKey(mo.From, mo.To)] = true
		case simOptIn[w]:
			delete(s.optedOut, optKey(mo.From, mo.To))
		}
	}
	res.OptedOut = s.optedOut[optKey(mo.From, mo.To)]
	pb := &postback{gen: s.gen, trackingID: id, code: res.Code, body: b.Bytes()}
	s.mu.Unlock()
	s.enqueue(pb, 0, 0)
	return res, nil
}

// moID makes a TRANSACTIONID like 511XG-02294-192SA-482H8 (SMS) or a
// TRACKINGID like MMS_MO_iLnCRrL6 (MMS). s.mu is held.
func (s *Server) moID(mo MO) string {
	const upper = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	const mixed = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	pick := func(set string, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = set[s.rng.IntN(len(set))]
		}
		return string(b)
	}
	if mo.Subject == "" && len(mo.Files) == 0 && !mo.MMS {
		return pick(upper, 5) + "-" + pick(upper, 5) + "-" + pick(upper, 5) + "-" + pick(upper, 5)
	}
	return "MMS_MO_" + pick(mixed, 8)
}

func (s *Server) moRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /_sim/mo", func(w http.ResponseWriter, r *http.Request) {
		var mo MO
		if !decodeJSON(w, r, &mo) {
			return
		}
		res, err := s.SendMO(mo)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		json.NewEncoder(w).Encode(res)
	})
	mux.HandleFunc("GET /_sim/optouts", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.OptOuts()) })
}
