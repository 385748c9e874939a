package skycore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Inbound (MO) postbacks: a message a person sent to one of the account's
// codes, posted to the same postback URL as delivery receipts (the formats
// are in docs/postback.md, "Inbound messages").

// Inbound codes and origins.
const (
	CodeSMSMO   = "N211"
	CodeMMSMO   = "N401"
	OriginSMSMO = "SMS_MO"
	OriginMMSMO = "MMS_MO"
)

// Inbound is one inbound message, every element as given (trimmed), FROM
// and TO as digits when they are phone numbers written with separators.
type Inbound struct {
	Origin        string   `json:"origin"` // SMS_MO or MMS_MO (from CODE when ORIGIN is absent)
	Code          string   `json:"code"`   // N211 or N401 (from ORIGIN when CODE is absent)
	From          string   `json:"from"`   // the mobile number
	To            string   `json:"to"`     // the short or long code written to
	Text          string   `json:"text,omitempty"`
	Keyword       string   `json:"keyword,omitempty"` // MMS: the inbox keyword Skycore matched
	Subject       string   `json:"subject,omitempty"`
	Files         []string `json:"files,omitempty"` // MMS: one content URL per part, in order
	TransactionID string   `json:"transactionId,omitempty"`
	TrackingID    string   `json:"trackingId,omitempty"`
	SPID          string   `json:"spid,omitempty"`
	Received      string   `json:"received,omitempty"`  // SMS: RECEIVED as given
	Timestamp     string   `json:"timestamp,omitempty"` // MMS: TIMESTAMP as given
}

// ErrNotInbound means a postback is not an inbound message (a delivery
// receipt, or not a POSTBACK at all): hand it to the delivery path.
var ErrNotInbound = errors.New("not an inbound postback")

// ErrMalformedInbound marks an inbound postback that can never be
// processed (no FROM or TO, ORIGIN and CODE that disagree).
var ErrMalformedInbound = errors.New("malformed inbound postback")

// Limits on untrusted XML, as for delivery postbacks (the token limit
// also bounds the number of FILE parts).
const (
	inboundMaxDepth  = 8
	inboundMaxTokens = 4096
	inboundMaxField  = 16 << 10 // a long SMS is 1,600 characters, up to 4 bytes each: kept whole
)

// SMS reports whether m is an SMS MO (else it is an MMS MO).
func (m *Inbound) SMS() bool { return m.Code == CodeSMSMO }

// MessageID is Skycore's id of the message: TRANSACTIONID (SMS) or
// TRACKINGID (MMS), "" when the postback has neither.
func (m *Inbound) MessageID() string {
	if m.SMS() {
		return m.TransactionID
	}
	return m.TrackingID
}

// Body is what the person wrote: TEXT (SMS) or SUBJECT (MMS), the text
// keywords are read from.
func (m *Inbound) Body() string {
	if m.SMS() {
		return m.Text
	}
	return m.Subject
}

// OccurredAt is RECEIVED (SMS) or TIMESTAMP (MMS) as given.
func (m *Inbound) OccurredAt() string {
	if m.SMS() {
		return m.Received
	}
	return m.Timestamp
}

// Time is OccurredAt parsed (RFC 3339, or without a zone as UTC); false
// when it does not parse. Opt-out and opt-in are ordered by it.
func (m *Inbound) Time() (time.Time, bool) {
	v := m.OccurredAt()
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// DedupKey is the key the store de-duplicates the message on: its
// MessageID, or when that is missing a hash of everything else (a retry
// of the same postback carries the same fields). maxLen is the longest id
// the table can key; a longer id is hashed too.
func (m *Inbound) DedupKey(maxLen int) string {
	if id := m.MessageID(); id != "" && len(id) <= maxLen {
		return m.Code + ":" + id
	}
	h := sha256.New()
	for _, f := range append([]string{m.Code, m.MessageID(), m.From, m.To, m.Text, m.Keyword, m.Subject, m.OccurredAt()}, m.Files...) {
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return m.Code + ":h:" + hex.EncodeToString(h.Sum(nil))[:32]
}

// ParseInbound reads one inbound postback from the decoded XML document
// (the body after base64 and the xml= form field are undone; a declared
// ISO-8859-1 or windows-1252 encoding is decoded here). ErrNotInbound
// when it is not one: neither ORIGIN SMS_MO / MMS_MO nor CODE N211 / N401.
// Unknown elements are ignored; DOCTYPEs and entities other than XML's
// five are refused.
func ParseInbound(doc []byte) (*Inbound, error) {
	root, err := boundedTree(doc, ErrNotInbound, inboundMaxTokens, inboundMaxDepth, inboundMaxField)
	if err != nil {
		return nil, err
	}
	if root.name != "POSTBACK" {
		return nil, ErrNotInbound
	}
	var m Inbound
	for _, c := range root.children {
		v := strings.TrimSpace(c.text.String())
		if len(v) > inboundMaxField {
			v = strings.ToValidUTF8(v[:inboundMaxField], "")
		}
		switch c.name {
		case "ORIGIN":
			m.Origin = strings.ToUpper(v)
		case "CODE":
			m.Code = strings.ToUpper(v)
		case "FROM":
			m.From = phone(v)
		case "TO":
			m.To = phone(v)
		case "TEXT":
			m.Text = v
		case "KEYWORD":
			m.Keyword = v
		case "SUBJECT":
			m.Subject = v
		case "TRANSACTIONID":
			m.TransactionID = v
		case "TRACKINGID":
			m.TrackingID = v
		case "SPID":
			m.SPID = v
		case "RECEIVED":
			m.Received = v
		case "TIMESTAMP":
			m.Timestamp = v
		case "CONTENT":
			for _, f := range c.children {
				if f.name != "FILE" {
					continue
				}
				if u := strings.TrimSpace(f.text.String()); u != "" {
					m.Files = append(m.Files, u)
				}
			}
		}
	}
	codeOf := map[string]string{OriginSMSMO: CodeSMSMO, OriginMMSMO: CodeMMSMO}
	originOf := map[string]string{CodeSMSMO: OriginSMSMO, CodeMMSMO: OriginMMSMO}
	switch {
	case codeOf[m.Origin] == "" && originOf[m.Code] == "":
		return nil, ErrNotInbound
	case m.Origin == "":
		m.Origin = originOf[m.Code]
	case m.Code == "":
		m.Code = codeOf[m.Origin]
	case codeOf[m.Origin] != m.Code:
		return nil, fmt.Errorf("%w: ORIGIN %q with CODE %q", ErrMalformedInbound, m.Origin, m.Code)
	}
	if m.From == "" || m.To == "" {
		return nil, fmt.Errorf("%w: FROM and TO are required", ErrMalformedInbound)
	}
	return &m, nil
}

// IsInbound reports whether doc is an inbound postback, well formed or
// not: what decides which path handles it.
func IsInbound(doc []byte) bool {
	_, err := ParseInbound(doc)
	return err == nil || errors.Is(err, ErrMalformedInbound)
}

// Marshal encodes m as Skycore's v1 XML postback (the simulator sends it;
// tests round-trip it).
func (m *Inbound) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<POSTBACK>")
	el := func(name, v string) {
		b.WriteString("<" + name + ">")
		xml.EscapeText(&b, []byte(v)) //nolint:errcheck // a bytes.Buffer cannot fail
		b.WriteString("</" + name + ">")
	}
	el("ORIGIN", m.Origin)
	el("CODE", m.Code)
	el("FROM", m.From)
	el("TO", m.To)
	if m.SMS() {
		el("TEXT", m.Text)
		el("RECEIVED", m.Received)
		el("TRANSACTIONID", m.TransactionID)
	} else {
		el("KEYWORD", m.Keyword)
		el("SUBJECT", m.Subject)
		el("TRACKINGID", m.TrackingID)
		el("SPID", m.SPID)
		el("TIMESTAMP", m.Timestamp)
		b.WriteString("<CONTENT>")
		for _, f := range m.Files {
			el("FILE", f)
		}
		b.WriteString("</CONTENT>")
	}
	b.WriteString("</POSTBACK>")
	return b.Bytes()
}
