package postback

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/receipt"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// one records and publishes one notification. A postback that must wait
// (another invocation holds it, a send event is being published, the
// tracking id is not linked yet) is tried again after short pauses, then
// answered 503 with everything it held released.
func (h *Handler) one(ctx context.Context, n Notification, doc []byte, owner string) error {
	log := h.d.Log.With("code", n.Code, "trackingId", Snippet([]byte(n.TrackingID), 80))
	h.d.Metrics.Count("Postbacks", "Code", metricCode(n.Code))
	if notices[n.Code] {
		log.InfoContext(ctx, "template encoding notice", "mmsId", n.MMSID, "status", n.Status)
		h.d.Metrics.Count("TemplateNotice", "Code", n.Code)
		return nil
	}
	k, known := codes[n.Code]
	switch {
	case !known:
		h.malformed(ctx, doc, errors.New("unknown CODE "+strconvQuote(n.Code)))
		return nil
	case n.TrackingID == "":
		h.malformed(ctx, doc, errors.New("no TRACKINGID"))
		return nil
	case !store.Keyable(n.TrackingID):
		h.d.Metrics.Count("UnkeyableTrackingID") // 200: a retry cannot key it either
		h.malformed(ctx, doc, errors.New("TRACKINGID of "+strconv.Itoa(len(n.TrackingID))+" bytes is too long to key"))
		return nil
	}
	for attempt := 0; ; attempt++ {
		err, again := h.try(ctx, n, k, owner, log)
		if !again || attempt >= len(h.waits) || !h.sleep(ctx, h.waits[attempt]) {
			return err
		}
	}
}

// try is one attempt at a postback; again reports a wait worth a short
// pause (err is then the 503 to answer when the pauses are spent).
func (h *Handler) try(ctx context.Context, n Notification, k kind, owner string, log *slog.Logger) (err error, again bool) {
	key := Key(n)
	decision, j, err := h.d.Store.Postback(ctx, n.TrackingID, key, k.rank, k.event, owner, h.now().Add(claimLease))
	if err != nil {
		// The write may have been applied with its answer lost: give back
		// what it would hold, so a retry right after succeeds.
		log.ErrorContext(ctx, "cannot record the postback; Skycore will retry", "err", err, "code", apperr.CodeOf(err))
		h.release(ctx, n.TrackingID, owner, log)
		return err, false
	}
	switch decision {
	case store.Duplicate, store.History:
		h.d.Metrics.Count("Duplicates")
		log.InfoContext(ctx, "postback recorded without an event", "decision", decision.String())
		if j.ID == "" && sendreq.ValidID(n.ClientReference) {
			// No event of its own, but its CLIENT_REFERENCE may still prove
			// an in-doubt request's acceptance (a higher postback without
			// one came first and waits for the link this writes).
			return h.reconcile(ctx, n, owner, log), false
		}
		return nil, false
	case store.Busy:
		log.InfoContext(ctx, "same tracking id being emitted elsewhere; waiting")
		return &apperr.Error{Code: apperr.CodeBusy, Message: "in progress"}, true
	}
	// Emit: this invocation holds the tracking id's emitter slot until it
	// marks the postback done or releases it.
	ev := Event(n, k.event)
	settled, err, again := h.join(ctx, n, j, owner, &ev, log)
	if err == nil {
		if err = h.d.Events.Publish(ctx, ev); err != nil {
			log.ErrorContext(ctx, "cannot publish the delivery event; Skycore will retry", "err", err)
		}
	}
	if err != nil {
		h.release(ctx, n.TrackingID, owner, log)
		return err, again
	}
	if err := h.d.Store.PostbackDone(ctx, n.TrackingID, key, owner, settled); err != nil {
		// The event is out; a retry after the hold could publish it again.
		log.WarnContext(ctx, "event published, not marked done", "err", err)
	}
	log.InfoContext(ctx, "delivery event", "id", ev.ID, "event", ev.Event)
	return nil, false
}

// join sets ev.ID and publishes, first, any send event of that id still
// pending (no postback's event goes out before its request's accepted).
// settled names the id when its record is final with nothing pending.
func (h *Handler) join(ctx context.Context, n Notification, j store.Joined, owner string, ev *delivery.Event, log *slog.Logger) (settled string, err error, again bool) {
	id, linked := j.ID, j.ID != ""
	if !linked && sendreq.ValidID(n.ClientReference) {
		id = n.ClientReference
	}
	if id == "" {
		if age := h.now().Sub(j.FirstSeen); age < JoinWindow {
			h.d.Metrics.Count("JoinWait")
			log.InfoContext(ctx, "tracking id not linked yet; Skycore will retry", "seenFor", age.Round(1e6).String())
			return "", &apperr.Error{Code: apperr.CodeBusy, Message: "tracking id not linked yet"}, true
		}
		h.unjoined(ctx, log, "tracking id never linked within the join window")
		return "", nil, false
	}
	if linked && j.Settled {
		ev.ID = id
		return id, nil, false
	}
	m, err := h.d.Store.Get(ctx, id)
	if err != nil {
		log.ErrorContext(ctx, "cannot read the request", "id", id, "err", err)
		return "", err, false
	}
	if m == nil {
		if linked { // its record ran out (TTL)
			ev.ID = id
		} else {
			h.unjoined(ctx, log, "CLIENT_REFERENCE names no request of ours")
		}
		return "", nil, false
	}
	if !m.Final() {
		// Skycore accepted it: the sender's call timed out, its sender
		// died mid-call, or its answer is still on the way.
		won, cur, err := h.d.Store.AcceptByPostback(ctx, id, n.TrackingID, owner, h.now().Add(claimLease))
		if err != nil {
			log.ErrorContext(ctx, "cannot record the acceptance a postback shows", "id", id, "err", err)
			h.releaseEvent(ctx, id, owner, log) // applied with its answer lost: its hold goes
			return "", err, false
		}
		if won {
			h.d.Metrics.Count("AcceptedByPostback")
			log.InfoContext(ctx, "acceptance recorded from a postback", "id", id, "priorState", m.State)
			if !linked {
				if err := h.link(ctx, n.TrackingID, id, log); err != nil {
					h.releaseEvent(ctx, id, owner, log)
					return "", err, false
				}
			}
			if err := h.publishRecorded(ctx, cur, n, owner, log); err != nil {
				return "", err, false
			}
			ev.ID = id
			return id, nil, false
		}
		if m = cur; m == nil || !m.Final() { // vanished or reopened meanwhile: look again
			return "", &apperr.Error{Code: apperr.CodeBusy, Message: "request record changed"}, true
		}
	}
	if m.State == store.StateRejected || m.State == store.StateExpired {
		// Skycore took a call of this id after all (an in-doubt call, before
		// the request ended rejected or expired): the receipt still reaches
		// the application under its id, counted, after its terminal event.
		h.d.Metrics.Count("LateReceipt")
		log.WarnContext(ctx, "receipt for a request that ended without acceptance", "id", id, "state", m.State)
	}
	if m.NeedsEvent() {
		took, cur, err := h.d.Store.TakeEvent(ctx, id, owner, h.now().Add(claimLease))
		if err != nil {
			log.ErrorContext(ctx, "cannot take the request's pending event", "id", id, "err", err)
			h.releaseEvent(ctx, id, owner, log) // applied with its answer lost: its hold goes
			return "", err, false
		}
		switch {
		case took:
			if err := h.publishRecorded(ctx, cur, n, owner, log); err != nil {
				return "", err, false
			}
		case cur != nil && cur.NeedsEvent():
			// Its recorder is publishing it now (at most its invocation).
			log.InfoContext(ctx, "the request's send event is being published; waiting", "id", id, "event", cur.PendingEvent)
			return "", &apperr.Error{Code: apperr.CodeBusy, Message: "send event pending"}, true
		}
	}
	if !linked {
		if err := h.link(ctx, n.TrackingID, id, log); err != nil {
			return "", err, false
		}
	}
	if err := h.noteReceiptTracking(ctx, m, n.TrackingID, log); err != nil {
		return "", err, false
	}
	ev.ID = id
	return id, nil, false
}

// reconcile records, from a postback that publishes nothing itself, the
// acceptance its CLIENT_REFERENCE proves for an open request, publishes the
// request's accepted event and links the tracking id. An error asks
// Skycore to retry.
func (h *Handler) reconcile(ctx context.Context, n Notification, owner string, log *slog.Logger) error {
	id := n.ClientReference
	m, err := h.d.Store.Get(ctx, id)
	if err != nil || m == nil || m.Final() {
		return err
	}
	won, cur, err := h.d.Store.AcceptByPostback(ctx, id, n.TrackingID, owner, h.now().Add(claimLease))
	if err != nil {
		h.releaseEvent(ctx, id, owner, log)
		return err
	}
	if !won {
		if cur != nil && !cur.Final() { // a live claim: its answer comes first
			return &apperr.Error{Code: apperr.CodeBusy, Message: "request in progress"}
		}
		return nil
	}
	h.d.Metrics.Count("AcceptedByPostback")
	log.InfoContext(ctx, "acceptance recorded from a postback without an event of its own", "id", id, "priorState", m.State)
	if err := h.link(ctx, n.TrackingID, id, log); err != nil {
		h.releaseEvent(ctx, id, owner, log)
		return err
	}
	return h.publishRecorded(ctx, cur, n, owner, log)
}

// publishRecorded publishes m's pending send event, built from the
// record, and clears it; on failure it is handed back at once.
func (h *Handler) publishRecorded(ctx context.Context, m *store.Message, n Notification, owner string, log *slog.Logger) error {
	ev := RecordEvent(m, n, h.now())
	// Receipt-check hook (issue 15): schedule the check before the accepted
	// event goes out; a failure is a publish failure (the event stays
	// pending, 503, and the retry schedules again: a duplicate check is
	// harmless).
	if err := h.scheduleReceipt(ctx, ev); err != nil {
		log.ErrorContext(ctx, "cannot schedule the receipt check; Skycore will retry", "id", m.ID, "err", err)
		h.d.Metrics.Count("ReceiptScheduleFailed")
		h.releaseEvent(ctx, m.ID, owner, log)
		return err
	}
	if err := h.d.Events.Publish(ctx, ev); err != nil {
		log.ErrorContext(ctx, "cannot publish the request's send event; Skycore will retry", "id", m.ID, "event", ev.Event, "err", err)
		h.releaseEvent(ctx, m.ID, owner, log)
		return err
	}
	if err := h.d.Store.EventSent(ctx, m.ID); err != nil {
		log.WarnContext(ctx, "send event published, not marked", "id", m.ID, "err", err)
	}
	log.InfoContext(ctx, "delivery event", "id", m.ID, "event", ev.Event)
	return nil
}

// receiptScheduler is implemented by an Events publisher that schedules
// receipt checks (receipt.WithChecks, wired in main with RECEIPT_WINDOW).
type receiptScheduler interface {
	ScheduleReceipt(ctx context.Context, id, trackingID string) error
}

var _ receiptScheduler = (*receipt.Checking)(nil)

// scheduleReceipt asks for the receipt check of an accepted event (issue
// 15); nothing for other events or when the publisher schedules none.
func (h *Handler) scheduleReceipt(ctx context.Context, ev delivery.Event) error {
	s, ok := h.d.Events.(receiptScheduler)
	if !ok || ev.Event != delivery.Accepted {
		return nil
	}
	return s.ScheduleReceipt(ctx, ev.ID, ev.TrackingID)
}

// RecordEvent is the pending send event of m (accepted, rejected, expired)
// as its record tells it; to, from and mmsId fall back to the postback's
// when the record lacks them (an acceptance recorded from a postback).
func RecordEvent(m *store.Message, n Notification, now time.Time) delivery.Event {
	ev := m.Event(now)
	ev.To, ev.From = cmp.Or(ev.To, n.To), cmp.Or(ev.From, n.From)
	if ev.MMSID == nil {
		ev.MMSID = delivery.MMSID(n.MMSID)
	}
	return ev
}

// link records trackingID → id; a conflict (the tracking id names another
// request) is logged, not retried: nothing can re-point it.
func (h *Handler) link(ctx context.Context, trackingID, id string, log *slog.Logger) error {
	err := h.d.Store.Link(ctx, trackingID, id)
	if errors.Is(err, store.ErrLinkConflict) {
		h.d.Metrics.Count("LinkConflict")
		log.ErrorContext(ctx, "tracking id already linked to another request; event keeps CLIENT_REFERENCE", "id", id, "code", apperr.CodeConflict)
		return nil
	}
	if err != nil {
		log.ErrorContext(ctx, "cannot link the tracking id", "id", id, "err", err)
	}
	return err
}

func (h *Handler) unjoined(ctx context.Context, log *slog.Logger, why string) {
	countUnjoined(ctx) // MaxUnjoined
	h.d.Metrics.Count("Unjoined")
	log.WarnContext(ctx, "event published without an id", "reason", why)
}

// release gives the tracking id's emitter slot back before a 5xx.
func (h *Handler) release(ctx context.Context, trackingID, owner string, log *slog.Logger) {
	if err := h.d.Store.PostbackRelease(context.WithoutCancel(ctx), trackingID, owner); err != nil {
		log.WarnContext(ctx, "cannot release the postback; a retry waits for its hold", "err", err)
	}
}

func (h *Handler) releaseEvent(ctx context.Context, id, owner string, log *slog.Logger) {
	if err := h.d.Store.ReleaseEvent(context.WithoutCancel(ctx), id, owner); err != nil {
		log.WarnContext(ctx, "cannot release the request's pending event; the next taker waits for its hold", "id", id, "err", err)
	}
}

// requestID names this invocation (the owner of what it holds).
func requestID(ctx context.Context, req events.APIGatewayV2HTTPRequest) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		return lc.AwsRequestID
	}
	if req.RequestContext.RequestID != "" {
		return req.RequestContext.RequestID
	}
	var b [8]byte
	rand.Read(b[:])
	return "local-" + hex.EncodeToString(b[:])
}
