package sender

// sendAt, expiresAt and cancel (docs/request.md): a request whose sendAt
// is ahead waits in its record, not on the queue (pkg/schedule says why);
// a cancel makes an id final when no call of it can have reached Skycore.

import (
	"context"
	"fmt"
	"time"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/metric"
	"github.com/mmsgate/mmsgate/pkg/schedule"
	"github.com/mmsgate/mmsgate/pkg/store"
	"github.com/mmsgate/mmsgate/pkg/throttle"
)

// cancelRetry is how soon a cancel that cannot be decided yet (the id's
// scheduled event is being published) comes back.
const cancelRetry = 3 * time.Second

// scheduling is the store as the sendAt and cancel steps use it.
type scheduling interface {
	RecordSchedule(ctx context.Context, id string, r store.ScheduleRequest) (bool, *store.Scheduled, error)
	ScheduledEventSent(ctx context.Context, id string) error
	Unschedule(ctx context.Context, id string, dueBy time.Time) (bool, *store.Message, error)
	Cancel(ctx context.Context, id, owner string, hold time.Time) (store.CancelResult, error)
}

// ahead reports the request's sendAt when it is still to come and the
// request may still be called (an expiresAt already past expires it at
// once, unscheduled).
func (h *Handler) ahead(j *job) (time.Time, bool) {
	t, ok := j.req.SendTime()
	if !ok {
		return time.Time{}, false
	}
	now := h.now()
	exp, _ := j.req.ExpiryTime()
	return t, t.After(now) && schedule.CallAllowed(now, exp)
}

// scheduleAhead takes in a valid request whose sendAt is ahead: recorded
// with its body, its scheduled event published once, then its SQS message
// deleted (the sweeper brings the body back when it is due).
func (h *Handler) scheduleAhead(ctx context.Context, j *job, sendAt time.Time) outcome {
	req := j.req
	lane := "" // the sweeper sends it back to the queue it came from
	if h.laneOf(j) == throttle.Bulk {
		lane = "bulk"
	}
	won, sc, err := h.d.Store.RecordSchedule(ctx, req.ID, store.ScheduleRequest{Body: j.rec.Body, SendAt: sendAt, Lane: lane,
		To: req.To, From: req.From, MMSID: string(req.MMSID), Owner: j.owner, Hold: h.lease(ctx)})
	if err != nil {
		h.storeFailed(ctx, j, "cannot record the scheduled request", err)
		return redeliver
	}
	now := h.now()
	switch {
	case won:
		h.d.Metrics.Count(metric.Scheduled)
		j.log.InfoContext(ctx, "scheduled", "sendAt", req.SendAt, "class", "scheduled")
		return h.publishScheduled(ctx, j, sc.Message)
	case sc.ScheduledEventPending():
		// Recorded by an earlier delivery that did not get its event out.
		return h.takeScheduled(ctx, j)
	case sc.State == store.StateScheduled && sc.Due.After(sc.SendAt):
		// A sweeper is handing it off: this body may be its copy, come a
		// moment early by another clock. Kept until sendAt, then claimed.
		h.setVisibility(ctx, j, sendAt.Sub(now)+time.Second)
		return redeliver
	case sc.State == store.StateScheduled:
		j.log.InfoContext(ctx, "redelivery of a scheduled request; its record holds it", "sendAt", req.SendAt, "class", "duplicate")
		return ack
	case sc.State == store.StateRetry:
		// Handed back to the queue already: no call before sendAt.
		h.setVisibility(ctx, j, sendAt.Sub(now)+time.Second)
		return redeliver
	}
	return h.notClaimed(ctx, j, sc.Message)
}

// takeScheduled publishes a scheduled event that an earlier delivery
// recorded and did not publish, unless its publisher still holds it.
func (h *Handler) takeScheduled(ctx context.Context, j *job) outcome {
	took, cur, err := h.d.Store.TakeEvent(ctx, j.req.ID, j.owner, h.lease(ctx))
	if err != nil {
		h.storeFailed(ctx, j, "cannot take the scheduled event", err)
		return redeliver
	}
	if !took {
		if cur == nil || !cur.ScheduledEventPending() {
			return ack // published meanwhile: the record holds the request
		}
		h.setVisibility(ctx, j, cur.LeaseUntil.Sub(h.now())+time.Second)
		return redeliver
	}
	return h.publishScheduled(ctx, j, cur)
}

// publishScheduled publishes the scheduled event of m, which this delivery
// holds, and marks it sent, which puts the record in the due index. Until
// the mark is written the SQS message stays: a record whose event is never
// marked would never be swept.
func (h *Handler) publishScheduled(ctx context.Context, j *job, m *store.Message) outcome {
	ev := delivery.New(delivery.Scheduled, m.About().Or(about(j.req)), h.now())
	ev.SendAt = j.req.SendAt
	var markErr error
	mark := func(ctx context.Context) error {
		markErr = h.persist(ctx, func(ctx context.Context) error { return h.d.Store.ScheduledEventSent(ctx, j.req.ID) })
		return markErr
	}
	release := func(ctx context.Context) error { return h.d.Store.ReleaseEvent(ctx, j.req.ID, j.owner) }
	if err := h.recorded().Publish(ctx, j.log, ev, mark, release); err != nil || markErr != nil {
		return redeliver
	}
	return ack
}

// due handles the body of an id whose record is still SCHEDULED at its
// sendAt (a sweeper died between its SendMessage and Unschedule, or the
// original delivery came back late): its scheduled event first, then the
// end of the wait, then the claim. done reports an outcome instead.
func (h *Handler) due(ctx context.Context, j *job, m *store.Message) (claimed bool, cur *store.Message, done bool, o outcome) {
	if m.ScheduledEventPending() {
		if o := h.takeScheduled(ctx, j); o == redeliver {
			return false, nil, true, redeliver
		}
	}
	applied, cur, err := h.d.Store.Unschedule(ctx, j.req.ID, h.now())
	if err != nil {
		h.storeFailed(ctx, j, "cannot end the wait of a scheduled request", err)
		return false, nil, true, redeliver
	}
	if !applied {
		switch {
		case cur == nil:
			return false, nil, true, redeliver
		case cur.ScheduledEventPending():
			h.setVisibility(ctx, j, cur.LeaseUntil.Sub(h.now())+time.Second)
			return false, nil, true, redeliver
		case cur.State == store.StateScheduled:
			// Its record waits for a later sendAt than this body's: the
			// record's own body goes out then.
			h.d.Metrics.Count(metric.Duplicate)
			j.log.WarnContext(ctx, "a body of a scheduled id before the record's sendAt; the record's body is sent then", "class", "duplicate")
			return false, nil, true, ack
		}
		// Canceled, or unscheduled by a sweeper meanwhile: claimed as is.
	}
	claimed, cur, err = h.d.Store.Claim(ctx, j.req.ID, store.Claim{Owner: j.owner, Lease: h.lease(ctx), First: j.first, InDoubt: h.cfg.InDoubtWindow})
	if err != nil {
		h.storeFailed(ctx, j, "cannot claim the request id", err)
		return false, nil, true, redeliver
	}
	return claimed, cur, false, ack
}

// expiresAtPassed reports whether the request's expiresAt forbids a call
// now; expireAt then records it expired (its body goes to the DLQ).
func (h *Handler) expiresAtPassed(j *job) bool {
	exp, _ := j.req.ExpiryTime()
	return !schedule.CallAllowed(h.now(), exp)
}

func (h *Handler) expireAt(ctx context.Context, j *job) outcome {
	exp, _ := j.req.ExpiryTime()
	return h.finish(ctx, j, store.StateExpired, schedule.ExpiredOutcome(exp,
		store.Outcome{To: j.req.To, From: j.req.From, MMSID: string(j.req.MMSID)}), 0)
}

// cancelMalformed reports whether the body meant a cancel but its cancel
// field is not a boolean: it must not become a rejected request X.
func cancelMalformed(verr error) bool {
	for _, e := range apperr.All(verr) {
		if e.Field == "cancel" {
			return true
		}
	}
	return false
}

// cancel handles {"id": X, "cancel": true}. verr is its validation: a
// cancel that is not exactly that cancels nothing and goes to the DLQ (it
// never makes X final as rejected).
func (h *Handler) cancel(ctx context.Context, j *job, verr error) outcome {
	if verr != nil {
		h.d.Metrics.Count(metric.Malformed)
		reason := truncate(verr.Error(), 1000)
		j.log.WarnContext(ctx, "malformed cancel; nothing canceled", "code", apperr.CodeOf(verr), "class", "permanent", "err", reason)
		return h.deadLetter(ctx, j, "cancel not applied: "+reason)
	}
	r, err := h.d.Store.Cancel(ctx, j.req.ID, j.owner, h.lease(ctx))
	if err != nil {
		h.storeFailed(ctx, j, "cannot apply the cancel", err)
		return redeliver
	}
	m := r.Message
	switch {
	case r.Won:
		h.d.Metrics.Count(metric.Canceled)
		j.log.InfoContext(ctx, "canceled", "class", "canceled")
		return h.publishRecorded(ctx, j, m)
	case r.Refused == store.CancelLater:
		j.log.InfoContext(ctx, "cancel not decidable yet; checking again shortly", "code", apperr.CodeBusy, "class", "retry")
		h.setVisibility(ctx, j, cancelRetry)
		return redeliver
	case r.Refused == store.CancelFinal && m != nil && m.State == store.StateCanceled:
		// A redelivered cancel: its canceled event, if still pending, goes
		// out now (no other terminal event can be pending on a CANCELED id).
		j.log.InfoContext(ctx, "cancel of an id already canceled", "class", "duplicate")
		return h.pending(ctx, j, m)
	}
	h.d.Metrics.Count(metric.CancelRefused, "Reason", r.Refused)
	state := ""
	if m != nil {
		state = m.State
	}
	j.log.WarnContext(ctx, fmt.Sprintf("%s: cancel refused (%s); nothing changed", j.req.ID, r.Refused), "state", state, "class", "cancelrefused")
	return ack
}
