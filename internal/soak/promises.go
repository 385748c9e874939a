package soak

// The soak's checks of expiresAt, cancel and the odd Success answers
// (docs/request.md "sendAt, expiresAt and cancel", docs/codes.md
// NO_TRACKINGID).

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mmsgate/mmsgate/internal/sim"
	"github.com/mmsgate/mmsgate/internal/stack"
	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// enqueueExpiring puts the requests of expiring on the send queue, each
// with its expiresAt that long after start (whole seconds, so that it is
// what the request says).
func (r *Report) enqueueExpiring(s *stack.Stack, expiring map[string]time.Duration, start time.Time) error {
	ids := make([]string, 0, len(expiring))
	for id := range expiring {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for i, id := range ids {
		at := start.Add(expiring[id]).Truncate(time.Second)
		r.expMu.Lock()
		r.expiresAt[id] = at
		r.expMu.Unlock()
		body := fmt.Sprintf(`{"id":%q,"to":"1774777%04d","mmsId":%d,"expiresAt":%q}`, id, i, 1000+i%9, at.Format(time.RFC3339))
		if err := s.Enqueue(body); err != nil {
			return err
		}
	}
	return nil
}

// checkExpiresAt: no Skycore call of an id at or after its expiresAt (a
// call is recorded as it arrives, a moment after it started); an id
// Skycore did not accept ends expired with code EXPIRES_AT, not before its
// expiresAt; one it accepted (before) ends accepted.
func (r *Report) checkExpiresAt(want map[string]string, calls map[string][]sim.Request, first map[string]delivery.Event) []string {
	var v []string
	r.expMu.Lock()
	defer r.expMu.Unlock()
	ids := make([]string, 0, len(r.expiresAt))
	for id := range r.expiresAt {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		at := r.expiresAt[id]
		accepted := false
		for _, q := range calls[id] {
			if !q.Time.Before(at) {
				r.SentAfterExpiresAt++
				v = append(v, fmt.Sprintf("%s: Skycore called at %s, at or after its expiresAt %s (accepted: %v)", id,
					q.Time.UTC().Format(time.RFC3339Nano), at.UTC().Format(time.RFC3339), q.Accepted))
			}
			accepted = accepted || q.Accepted
		}
		e, ok := first[id]
		switch {
		case !ok: // lost: counted as such
		case accepted && e.Event != delivery.Accepted:
			v = append(v, fmt.Sprintf("%s: Skycore accepted it, yet it ended %s %s", id, e.Event, e.Code))
		case accepted:
		case e.Event != delivery.Expired || e.Code != string(apperr.CodeExpiresAt):
			v = append(v, fmt.Sprintf("%s ended %s %s, want expired %s (expiresAt %s)", id, e.Event, e.Code, apperr.CodeExpiresAt, at.UTC().Format(time.RFC3339)))
		default:
			r.ExpiredAtExpiresAt++
			if t, err := time.Parse(delivery.TimeFormat, e.RecordedAt); err == nil && t.Before(at) {
				v = append(v, fmt.Sprintf("%s expired at %s, before its expiresAt %s", id, e.RecordedAt, at.UTC().Format(time.RFC3339)))
			}
		}
	}
	return v
}

// checkCancels applies docs/request.md's cancel rules. A cancel makes an
// id final (canceled) only when no call of it can have reached Skycore and
// none is starting; it changes nothing when the id is final, being called,
// or in doubt. So a violation is:
//
//   - a canceled id that Skycore accepted, or that was called after its
//     canceled event, or whose earlier call may have reached Skycore (the
//     simulator hung or dropped it after reading it: the sender was in
//     doubt);
//   - a canceled id with another terminal event too;
//   - a cancel refused while its request waited for its sendAt (record
//     SCHEDULED, its scheduled event out), as the sender logged it.
//
// A cancel that lost to a call, a claim or an answer in doubt is no
// violation.
func (r *Report) checkCancels(ids []string, kinds map[string]map[string]bool, canceledAt map[string]time.Time, calls map[string][]sim.Request) []string {
	var v []string
	for _, id := range ids {
		if !kinds[id][delivery.Canceled] {
			continue
		}
		r.Canceled++
		var why []string
		if len(kinds[id]) > 1 {
			why = append(why, fmt.Sprintf("it also has %d other terminal event kinds", len(kinds[id])-1))
		}
		at := canceledAt[id]
		for _, q := range calls[id] {
			switch {
			case q.Accepted:
				why = append(why, fmt.Sprintf("Skycore accepted its call at %s", q.Time.UTC().Format(time.RFC3339Nano)))
			case q.Fault == "hang" || q.Fault == "reset" || q.Fault == "truncate":
				why = append(why, fmt.Sprintf("its call at %s may have reached Skycore (%s)", q.Time.UTC().Format(time.RFC3339Nano), q.Fault))
			}
			if !at.IsZero() && q.Time.After(at) {
				why = append(why, fmt.Sprintf("called at %s, after its canceled event (%s)", q.Time.UTC().Format(time.RFC3339Nano), at.Format(delivery.TimeFormat)))
			}
		}
		if len(why) > 0 {
			r.CancelViolations++
			v = append(v, fmt.Sprintf("%s canceled, but %v", id, why))
		}
	}
	for _, f := range r.cancels.refusals() {
		if f.State == store.StateScheduled || f.State == "" {
			r.CancelViolations++
			v = append(v, fmt.Sprintf("%s: cancel refused (%s) at %s with the record %q: a waiting request must be canceled", f.ID, f.Reason, f.Time, f.State))
		}
	}
	return v
}

// checkLongTracking: an id whose accepted call was answered with a
// tracking id over 2,048 bytes ends in one accepted event with code
// NO_TRACKINGID and no tracking id (docs/codes.md).
func (r *Report) checkLongTracking(calls map[string][]sim.Request, first map[string]delivery.Event) []string {
	var v []string
	for id, qs := range calls {
		for _, q := range qs {
			if q.Fault != "accept-longtid" || !q.Accepted {
				continue
			}
			if e := first[id]; e.Event != delivery.Accepted || e.Code != string(apperr.CodeNoTrackingID) || e.TrackingID != "" {
				v = append(v, fmt.Sprintf("%s: Skycore's Success had a %d-byte tracking id; it ended %s code %q tracking id of %d bytes, want accepted %s without one",
					id, len(q.TrackingID), e.Event, e.Code, len(e.TrackingID), apperr.CodeNoTrackingID))
			}
		}
	}
	slices.Sort(v)
	return v
}

// cancelTap reads the functions' log lines on their way to next for the
// sender's refused cancels (class "cancelrefused", pkg/sender).
type cancelTap struct {
	next io.Writer // nil: discarded

	mu      sync.Mutex
	refused []cancelRefusal
}

// cancelRefusal is one refused cancel as the sender logged it.
type cancelRefusal struct {
	ID, Reason, State, Time string
}

var refusedReason = regexp.MustCompile(`cancel refused \(([A-Z]+)\)`)

func (c *cancelTap) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(`"cancelrefused"`)) {
		for line := range bytes.Lines(p) {
			c.read(line)
		}
	}
	if c.next == nil {
		return len(p), nil
	}
	return c.next.Write(p)
}

func (c *cancelTap) read(line []byte) {
	i := bytes.IndexByte(line, '{')
	if i < 0 {
		return
	}
	// Lambda's JSON log format names slog's time and msg timestamp and
	// message.
	var l struct {
		Time, Timestamp string
		Msg, Message    string
		ID              string `json:"id"`
		State           string `json:"state"`
		Class           string `json:"class"`
	}
	if json.Unmarshal(line[i:], &l) != nil || l.Class != "cancelrefused" {
		return
	}
	f := cancelRefusal{ID: l.ID, State: l.State, Time: cmp.Or(l.Timestamp, l.Time)}
	if m := refusedReason.FindStringSubmatch(cmp.Or(l.Message, l.Msg)); m != nil {
		f.Reason = m[1]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refused = append(c.refused, f)
}

func (c *cancelTap) refusals() []cancelRefusal {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.refused)
}

func (c *cancelTap) refusedCount() int { return len(c.refusals()) }

// LinesOf returns up to max lines of the log at path that name an id the
// violations name.
func LinesOf(path string, violations []string, max int) string {
	ids := map[string]bool{}
	for _, v := range violations {
		for _, id := range soakID.FindAllString(v, -1) {
			ids[`"id":"`+id+`"`] = true
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var out []string
	for line := range strings.Lines(string(b)) {
		for id := range ids {
			if strings.Contains(line, id) && len(out) < max {
				out = append(out, strings.TrimSpace(line))
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

var soakID = regexp.MustCompile(`soak-[0-9]+`)

// MinCallsBeforeExpiry is how many calls outside the outage an id must
// have had, every one faulted, for its expiry not to be a finding. About a
// quarter of calls fault (simConfig), so an id meets three in a row about
// once in 64; the window after the outage gives it twice that many calls.
const MinCallsBeforeExpiry = 3

// callsOutsideOutage counts the calls Skycore's outage did not answer.
func callsOutsideOutage(calls []sim.Request) int {
	n := 0
	for _, q := range calls {
		if !strings.HasPrefix(q.Fault, "outage-") {
			n++
		}
	}
	return n
}

// judgeExpiry: an id Skycore could take expired. Stray faults are
// independent, so some id now and then meets one on every call after the
// outage; expiring it then is the window doing its job (counted). Too few
// calls outside the outage is the window being too short (a finding).
func (r *Report) judgeExpiry(id string, calls []sim.Request) string {
	n := callsOutsideOutage(calls)
	if n >= MinCallsBeforeExpiry {
		r.ExpiredByStrayFaults++
		return ""
	}
	return fmt.Sprintf("%s expired though Skycore could take it after %d calls outside the outage (retry window %s too short?)", id, n, r.RetryWindow)
}
