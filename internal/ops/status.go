package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mmsgate/mmsgate/pkg/store"
)

// records is what Status reads: the two read models of pkg/store.
type records interface {
	Get(ctx context.Context, id string) (*store.Message, error)
	GetTracking(ctx context.Context, trackingID string) (*store.Tracking, error)
}

var _ records = (*store.Store)(nil)

// ErrNotFound means the table has no record of the id or tracking id asked
// for (never sent, mistyped, or removed by the table's TTL).
var ErrNotFound = errors.New("not found")

// Report is what `mmsgate status` prints: the request's record and its
// tracking item. Its JSON form is stable for scripts: every field is always
// present; times are RFC 3339 in UTC with milliseconds, "" when unknown;
// message or tracking is null when that item does not exist.
type Report struct {
	Message  *MessageReport  `json:"message"`
	Tracking *TrackingReport `json:"tracking"`
}

// MessageReport is the msg#<id> record.
type MessageReport struct {
	ID            string `json:"id"`
	State         string `json:"state"` // SCHEDULED, INPROGRESS, RETRY, INDOUBT, ACCEPTED, REJECTED, EXPIRED
	Final         bool   `json:"final"`
	TrackingID    string `json:"trackingId"`
	AcceptedBy    string `json:"acceptedBy"` // "sender", "postback" (its CLIENT_REFERENCE proved it) or ""
	Code          string `json:"code"`
	Error         string `json:"error"`
	To            string `json:"to"`
	From          string `json:"from"`
	MMSID         string `json:"mmsId"`
	FirstEnqueued string `json:"firstEnqueued"`
	Created       string `json:"created"`
	Attempts      int    `json:"attempts"`
	// HistoryDropped counts the attempts older than the record keeps
	// (store.HistorySlots).
	HistoryDropped int    `json:"historyDropped"`
	Claim          *Claim `json:"claim"`        // the sender's claim, or the hold on the pending event
	InDoubtUntil   string `json:"inDoubtUntil"` // INDOUBT: not sent again before this, unless a postback accepts it
	SendAt         string `json:"sendAt"`       // a scheduled request's sendAt, until its first call
	PendingEvent   string `json:"pendingEvent"` // a terminal event recorded, not yet published
	Suppressed     bool   `json:"suppressed"`   // rejected locally from the suppression list
	History        []Step `json:"history"`
}

// Claim is who holds the record and until when.
type Claim struct {
	Owner string `json:"owner"` // the SQS message id and invocation
	Until string `json:"until"`
	Live  bool   `json:"live"` // false: the lease ran out (its holder died)
}

// Step is one attempt, or the acceptance a postback proved.
type Step struct {
	At         string `json:"at"`
	Attempt    int    `json:"attempt"` // 0 for a postback's acceptance
	By         string `json:"by"`      // sender or postback
	State      string `json:"state"`   // what it ended in: RETRY, INDOUBT, ACCEPTED, REJECTED, EXPIRED
	Code       string `json:"code"`
	TrackingID string `json:"trackingId"`
}

// TrackingReport is the trk#<trackingId> item: the postbacks.
type TrackingReport struct {
	TrackingID    string `json:"trackingId"`
	ID            string `json:"id"`      // the request it is linked to, "" when none
	Highest       string `json:"highest"` // the highest state emitted: sent, delivered, undelivered, failed
	Rank          int    `json:"rank"`    // sent 1, final 2
	FirstPostback string `json:"firstPostback"`
	// Postbacks in arrival order. Status is "done" (published, or recorded
	// as history), "pending" (it advanced the state; its event is not
	// confirmed yet) or "recorded".
	Postbacks []Postback `json:"postbacks"`
}

// Postback is one postback of a tracking id.
type Postback struct {
	Code   string `json:"code"`
	Key    string `json:"key"`
	Status string `json:"status"`
	Done   string `json:"done"`
}

// Status reads the record of id and, when it has a tracking id, the
// tracking item. now decides whether a claim is still live.
func Status(ctx context.Context, r records, id string, now time.Time) (*Report, error) {
	m, err := r.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("no request with id %q: %w", id, ErrNotFound)
	}
	rep := &Report{Message: messageReport(m, now)}
	if m.TrackingID != "" {
		t, err := r.GetTracking(ctx, m.TrackingID)
		if err != nil {
			return nil, err
		}
		rep.Tracking = trackingReport(t)
	}
	return rep, nil
}

// StatusByTracking starts from Skycore's tracking id and follows its link
// to the request.
func StatusByTracking(ctx context.Context, r records, trackingID string, now time.Time) (*Report, error) {
	t, err := r.GetTracking(ctx, trackingID)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fmt.Errorf("no postback or request with tracking id %q: %w", trackingID, ErrNotFound)
	}
	rep := &Report{Tracking: trackingReport(t)}
	if t.ID != "" {
		m, err := r.Get(ctx, t.ID)
		if err != nil {
			return nil, err
		}
		if m != nil {
			rep.Message = messageReport(m, now)
		}
	}
	return rep, nil
}

func messageReport(m *store.Message, now time.Time) *MessageReport {
	r := &MessageReport{ID: m.ID, State: m.State, Final: m.Final(), TrackingID: m.TrackingID, Code: m.Code, Error: m.Error,
		To: m.To, From: m.From, MMSID: m.MMSID, FirstEnqueued: stamp(m.First), Created: restamp(m.Created),
		Attempts: m.Attempts, PendingEvent: m.PendingEvent, Suppressed: m.Suppressed, History: []Step{}}
	if m.State == store.StateAccepted {
		r.AcceptedBy = m.AcceptedBy
		if r.AcceptedBy == "" {
			r.AcceptedBy = "sender"
		}
	}
	if m.State == store.StateInDoubt {
		r.InDoubtUntil = stamp(m.DoubtUntil)
	}
	// A scheduled request's first-enqueued time is its sendAt (store
	// RecordSchedule): still ahead, and no call yet, it waits for it.
	if m.Attempts == 0 && (m.State == store.StateScheduled || m.State == store.StateRetry && m.First.After(now)) {
		r.SendAt = stamp(m.First)
	}
	if (m.State == store.StateInProgress || m.PendingEvent != "") && !m.LeaseUntil.IsZero() {
		r.Claim = &Claim{Owner: m.Owner, Until: stamp(m.LeaseUntil), Live: m.Held(now)}
	}
	senderSteps := 0
	for _, h := range m.History {
		r.History = append(r.History, Step{At: stamp(h.At), Attempt: h.Attempt, By: h.By, State: h.State, Code: h.Code, TrackingID: h.TrackingID})
		if h.By != "postback" {
			senderSteps++
		}
	}
	// The attempt in progress has no step yet.
	recorded := m.Attempts
	if m.State == store.StateInProgress {
		recorded--
	}
	if d := recorded - senderSteps; d > 0 && recorded > store.HistorySlots {
		r.HistoryDropped = d
	}
	return r
}

func trackingReport(t *store.Tracking) *TrackingReport {
	if t == nil {
		return nil
	}
	r := &TrackingReport{TrackingID: t.TrackingID, ID: t.ID, Highest: t.State, Rank: t.Rank, FirstPostback: stamp(t.FirstSeen), Postbacks: []Postback{}}
	for _, p := range t.Postbacks {
		status := "recorded"
		switch {
		case p.Pending:
			status = "pending"
		case p.Done != "":
			status = "done"
		}
		r.Postbacks = append(r.Postbacks, Postback{Code: p.Code, Key: p.Key, Status: status, Done: restamp(p.Done)})
	}
	return r
}

// jsonTime is the format of every time in the JSON documents.
const jsonTime = "2006-01-02T15:04:05.000Z07:00"

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(jsonTime)
}

// restamp brings a stored RFC 3339 stamp to the report's format.
func restamp(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return stamp(t)
}

func parseStamp(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// WriteJSON prints the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	return writeJSON(w, r)
}

// WriteText prints the report as a compact timeline, times in UTC:
//
//	id order-1   state ACCEPTED   tracking DrXAFP-Ylpc-JZL   first enqueued 2026-11-26T09:00:00Z
//	  09:00:01  attempt 1  RETRY     E503
//	  09:00:07  attempt 2  ACCEPTED  tracking DrXAFP-Ylpc-JZL
//	  postbacks: N101 done 09:00:09 · N102 done 09:00:12   (highest: delivered)
func (r *Report) WriteText(w io.Writer) error {
	p := &printer{w: w}
	if m := r.Message; m != nil {
		p.day = dayOf(m.FirstEnqueued, m.Created)
		p.message(m)
		if r.Tracking != nil && r.Tracking.ID != "" && r.Tracking.ID != m.ID {
			p.line("  tracking %s is linked to another request: %s", r.Tracking.TrackingID, r.Tracking.ID)
		}
		switch {
		case r.Tracking != nil:
			p.postbacks(r.Tracking)
		case m.TrackingID != "":
			p.line("  postbacks: none yet")
		}
		return p.err
	}
	t := r.Tracking
	p.day = dayOf(t.FirstPostback)
	head := "tracking " + t.TrackingID
	if t.ID == "" {
		head += "   no request linked (its postbacks are published with \"id\": \"\")"
	} else {
		head += "   id " + t.ID + " (no record: removed by the table's TTL?)"
	}
	if t.FirstPostback != "" {
		head += "   first postback " + p.long(t.FirstPostback)
	}
	p.line("%s", head)
	p.postbacks(t)
	return p.err
}

type printer struct {
	w   io.Writer
	day string // the date the timeline's short times belong to
	err error
}

func (p *printer) line(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format+"\n", args...)
	}
}

func dayOf(stamps ...string) string {
	for _, s := range stamps {
		if t := parseStamp(s); !t.IsZero() {
			return t.UTC().Format(time.DateOnly)
		}
	}
	return ""
}

// short is a time of day on the timeline's date, the date too otherwise.
func (p *printer) short(s string) string {
	t := parseStamp(s)
	if t.IsZero() {
		return "-"
	}
	t = t.UTC()
	if t.Format(time.DateOnly) == p.day {
		return t.Format(time.TimeOnly)
	}
	return t.Format(time.DateTime)
}

func (p *printer) long(s string) string {
	t := parseStamp(s)
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func (p *printer) message(m *MessageReport) {
	head := fmt.Sprintf("id %s   state %s", m.ID, m.State)
	if m.TrackingID != "" {
		head += "   tracking " + m.TrackingID
	}
	if m.FirstEnqueued != "" {
		head += "   first enqueued " + p.long(m.FirstEnqueued)
	}
	p.line("%s", head)
	var facts []string
	for _, f := range []struct{ name, v string }{{"to", m.To}, {"from", m.From}, {"mmsId", m.MMSID}} {
		if f.v != "" {
			facts = append(facts, f.name+" "+f.v)
		}
	}
	facts = append(facts, fmt.Sprintf("attempts %d", m.Attempts))
	if m.AcceptedBy == "postback" {
		facts = append(facts, "accepted by postback (its CLIENT_REFERENCE)")
	}
	p.line("  %s", strings.Join(facts, "   "))
	if m.HistoryDropped > 0 {
		p.line("  (%d earlier attempts not kept: the record keeps the last %d)", m.HistoryDropped, store.HistorySlots)
	}
	tw := tabwriter.NewWriter(p.w, 0, 0, 2, ' ', 0)
	for _, h := range m.History {
		who := fmt.Sprintf("attempt %d", h.Attempt)
		if h.By == "postback" {
			who = "postback"
		}
		var detail []string
		if h.Code != "" {
			detail = append(detail, h.Code)
		}
		if h.TrackingID != "" {
			detail = append(detail, "tracking "+h.TrackingID)
		}
		if h.State == store.StateInDoubt {
			detail = append(detail, "(the call may have reached Skycore)")
		}
		if p.err == nil {
			_, p.err = fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", p.short(h.At), who, h.State, strings.Join(detail, "  "))
		}
	}
	if p.err == nil {
		p.err = tw.Flush()
	}
	switch m.State {
	case store.StateInProgress:
		if c := m.Claim; c != nil && c.Live {
			p.line("  in progress: attempt %d claimed by %s until %s", m.Attempts, c.Owner, p.short(c.Until))
		} else if c != nil {
			p.line("  in progress: attempt %d claimed by %s, whose lease ran out at %s (it died, maybe mid-call): the next delivery marks it in doubt",
				m.Attempts, c.Owner, p.short(c.Until))
		}
	case store.StateInDoubt:
		p.line("  in doubt until %s: not sent again before then, unless a postback shows Skycore accepted it", p.short(m.InDoubtUntil))
	case store.StateScheduled:
		p.line("  scheduled: no call before %s (sendAt); the sweeper gives it back to the send queue shortly before", p.short(m.SendAt))
	case store.StateRetry:
		if m.SendAt != "" {
			p.line("  scheduled: back on the send queue, which holds it until %s (sendAt); no call before then", p.short(m.SendAt))
		} else {
			p.line("  waiting for the next delivery of the SQS message")
		}
	}
	if m.Suppressed {
		p.line("  suppressed: rejected locally with %s, the number is on the suppression list (no Skycore call)", m.Code)
	}
	if m.Error != "" {
		p.line("  error: %s", m.Error)
	}
	if m.PendingEvent != "" {
		held := "no one holds it: the next delivery or postback of this id publishes it"
		if c := m.Claim; c != nil && c.Live {
			held = "held by " + c.Owner + " until " + p.short(c.Until)
		}
		p.line("  event %q recorded, not yet published (%s)", m.PendingEvent, held)
	}
}

func (p *printer) postbacks(t *TrackingReport) {
	if len(t.Postbacks) == 0 {
		p.line("  postbacks: none yet")
		return
	}
	var parts []string
	for _, pb := range t.Postbacks {
		s := pb.Code + " " + pb.Status
		if pb.Status == "done" {
			s += " " + p.short(pb.Done)
		}
		parts = append(parts, s)
	}
	tail := ""
	if t.Highest != "" {
		tail = "   (highest: " + t.Highest + ")"
	}
	p.line("  postbacks: %s%s", strings.Join(parts, " · "), tail)
}
