package postback

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/metric"
	"github.com/mmsgate/mmsgate/pkg/recorded"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// one records and publishes one notification. A postback that must wait
// (another invocation holds it, a send event is being published, the
// tracking id is not linked yet) is tried again after short pauses, then
// answered 503 with everything it held released.
func (h *Handler) one(ctx context.Context, n Notification, doc []byte, owner string) error {
	if n.TrackingID != "" && !store.Keyable(n.TrackingID) {
		// Skycore accepted its request with this id too (recorded as
		// NO_TRACKINGID): its surrogate key joins it through CLIENT_REFERENCE.
		// Logged by length and hash only.
		h.d.Metrics.Count(metric.UnkeyableTrackingID)
		sur := store.KeyOf(n.TrackingID)
		h.d.Log.WarnContext(ctx, "TRACKINGID too long to key; processed under its hash", "code", n.Code,
			"trackingIdBytes", len(n.TrackingID), "trackingIdSha256", strings.TrimPrefix(sur, store.SurrogatePrefix)[:16], "surrogate", sur)
		n.TrackingID = sur
	}
	log := h.d.Log.With("code", n.Code, "trackingId", Snippet([]byte(n.TrackingID), 80))
	h.d.Metrics.Count(metric.Postbacks, "Code", metricCode(n.Code))
	k, notice, known := classify(n.Code)
	if notice {
		log.InfoContext(ctx, "template encoding notice", "mmsId", n.MMSID, "status", n.Status)
		h.d.Metrics.Count(metric.TemplateNotice, "Code", n.Code)
		return nil
	}
	switch {
	case !known:
		h.malformed(ctx, doc, errors.New("unknown CODE "+strconvQuote(n.Code)))
		return nil
	case n.TrackingID == "":
		h.malformed(ctx, doc, errors.New("no TRACKINGID"))
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
		h.d.Metrics.Count(metric.Duplicates)
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
	t, again, err := h.join(ctx, n, j, owner, log)
	if err != nil {
		h.release(ctx, n.TrackingID, owner, log)
		return err, again
	}
	ev := Event(n, k.event)
	ev.ID = t.id
	fillFromRecord(&ev, t.about)
	err = h.recorded().Publish(ctx, log, ev,
		func(ctx context.Context) error {
			return h.d.Store.PostbackDone(ctx, n.TrackingID, key, owner, t.settledAbout())
		},
		func(ctx context.Context) error { return h.d.Store.PostbackRelease(ctx, n.TrackingID, owner) })
	return err, false
}

// fillFromRecord sets the event's fields that the postback left empty from what
// the request's record tells (zero when the record was not read).
func fillFromRecord(ev *delivery.Event, rec delivery.About) {
	ev.TrackingID, ev.To, ev.From = cmp.Or(ev.TrackingID, rec.TrackingID), cmp.Or(ev.To, rec.To), cmp.Or(ev.From, rec.From)
	ev.Metadata = rec.Metadata // the request's own: a postback never carries it
	if ev.MMSID == nil {
		ev.MMSID = delivery.MMSID(rec.MMSID)
	}
}

// target is where a postback's event goes: the request's id ("" when no
// request can be named), what its record tells every event (zero when not
// read), and whether that record is final with nothing pending (settled:
// about is then kept on the tracking id, and later postbacks read it
// there instead of the record).
type target struct {
	id      string
	about   delivery.About
	settled bool
}

// join names the postback's request and publishes, first, any send event
// of that id still pending (no postback's event goes out before its
// request's accepted). again reports a wait worth a short pause (the
// error is then the 503 to answer when the pauses are spent).
func (h *Handler) join(ctx context.Context, n Notification, j store.Joined, owner string, log *slog.Logger) (t target, again bool, err error) {
	id, linked := resolve(n, j)
	if id == "" {
		if age := h.now().Sub(j.FirstSeen); age < JoinWindow {
			h.d.Metrics.Count(metric.JoinWait)
			log.InfoContext(ctx, "tracking id not linked yet; Skycore will retry", "seenFor", age.Round(1e6).String())
			return target{}, true, &apperr.Error{Code: apperr.CodeBusy, Message: "tracking id not linked yet"}
		}
		h.unjoined(ctx, log, "tracking id never linked within the join window")
		return target{}, false, nil
	}
	if linked && j.Settled {
		return target{id: id, about: j.About, settled: true}, false, nil
	}
	m, err := h.d.Store.Get(ctx, id)
	if err != nil {
		log.ErrorContext(ctx, "cannot read the request", "id", id, "err", err)
		return target{}, false, err
	}
	if m == nil {
		if !linked {
			h.unjoined(ctx, log, "CLIENT_REFERENCE names no request of ours")
			return target{}, false, nil
		}
		return target{id: id, about: delivery.About{Metadata: j.Metadata}}, false, nil // its record ran out (TTL); the link kept the metadata
	}
	if !m.Final() {
		cur, won, again, err := h.acceptByPostback(ctx, n, m, owner, log)
		switch {
		case err != nil:
			return target{}, again, err
		case won:
			return target{id: id, about: cur.About(), settled: true}, false, nil
		}
		m = cur
	}
	if m.State == store.StateRejected || m.State == store.StateExpired {
		// Skycore took a call of this id after all (an in-doubt call, before
		// the request ended rejected or expired): the receipt still reaches
		// the application under its id, counted, after its terminal event.
		h.d.Metrics.Count(metric.LateReceipt)
		log.WarnContext(ctx, "receipt for a request that ended without acceptance", "id", id, "state", m.State)
	}
	if again, err := h.flush(ctx, n, m, owner, log); err != nil {
		return target{}, again, err
	}
	if !linked {
		if err := h.link(ctx, n.TrackingID, id, m.Metadata, log); err != nil {
			return target{}, false, err
		}
	}
	if err := h.noteReceiptTracking(ctx, m, n.TrackingID, log); err != nil {
		return target{}, false, err
	}
	return target{id: id, about: m.About(), settled: true}, false, nil
}

// settledAbout is what PostbackDone keeps on the tracking id: the
// record's About when settled, zero otherwise.
func (t target) settledAbout() delivery.About {
	if !t.settled {
		return delivery.About{}
	}
	a := t.about
	a.ID = t.id
	return a
}

// resolve names the request of a postback: the tracking id's link, else a
// usable CLIENT_REFERENCE; "" when neither.
func resolve(n Notification, j store.Joined) (id string, linked bool) {
	if j.ID != "" {
		return j.ID, true
	}
	if sendreq.ValidID(n.ClientReference) {
		return n.ClientReference, false
	}
	return "", false
}

// acceptByPostback records the acceptance the postback shows for m, an
// open request (Skycore accepted it: the sender's call timed out, its
// sender died mid-call, or its answer is still on the way), and publishes
// its accepted event, linking the tracking id. When another writer got
// there first it returns the record as it now is, final.
func (h *Handler) acceptByPostback(ctx context.Context, n Notification, m *store.Message, owner string, log *slog.Logger) (cur *store.Message, won, again bool, err error) {
	won, cur, err = h.d.Store.AcceptByPostback(ctx, m.ID, n.TrackingID, owner, h.now().Add(claimLease))
	if err != nil {
		log.ErrorContext(ctx, "cannot record the acceptance a postback shows", "id", m.ID, "err", err)
		h.releaseEvent(ctx, m.ID, owner, log) // applied with its answer lost: its hold goes
		return nil, false, false, err
	}
	if !won {
		if cur == nil || !cur.Final() { // vanished or reopened meanwhile: look again
			return nil, false, true, &apperr.Error{Code: apperr.CodeBusy, Message: "request record changed"}
		}
		return cur, false, false, nil
	}
	h.d.Metrics.Count(metric.AcceptedByPostback)
	log.InfoContext(ctx, "acceptance recorded from a postback", "id", m.ID, "priorState", m.State)
	if err := h.publishRecorded(ctx, cur, n, owner, log); err != nil {
		return nil, false, false, err
	}
	return cur, true, false, nil
}

// flush publishes m's pending send event, if any, unless its recorder is
// publishing it now (again: wait for it).
func (h *Handler) flush(ctx context.Context, n Notification, m *store.Message, owner string, log *slog.Logger) (again bool, err error) {
	if !m.NeedsEvent() {
		return false, nil
	}
	took, cur, err := h.d.Store.TakeEvent(ctx, m.ID, owner, h.now().Add(claimLease))
	switch {
	case err != nil:
		log.ErrorContext(ctx, "cannot take the request's pending event", "id", m.ID, "err", err)
		h.releaseEvent(ctx, m.ID, owner, log) // applied with its answer lost: its hold goes
		return false, err
	case took:
		return false, h.publishRecorded(ctx, cur, n, owner, log)
	case cur != nil && cur.NeedsEvent():
		// Its recorder is publishing it now (at most its invocation).
		log.InfoContext(ctx, "the request's send event is being published; waiting", "id", m.ID, "event", cur.PendingEvent)
		return true, &apperr.Error{Code: apperr.CodeBusy, Message: "send event pending"}
	}
	return false, nil
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
	h.d.Metrics.Count(metric.AcceptedByPostback)
	log.InfoContext(ctx, "acceptance recorded from a postback without an event of its own", "id", id, "priorState", m.State)
	return h.publishRecorded(ctx, cur, n, owner, log)
}

// publishRecorded publishes m's pending send event through the one
// recorded-event path (which links an accepted request's tracking id and
// schedules its receipt check first); on failure it is handed back at
// once and Skycore retries.
func (h *Handler) publishRecorded(ctx context.Context, m *store.Message, n Notification, owner string, log *slog.Logger) error {
	known := about(n)
	if store.IsSurrogate(known.TrackingID) { // the request is NO_TRACKINGID: its send event names none
		known.TrackingID = ""
	}
	return h.recorded().Pending(ctx, log, m, owner, known, nil)
}

// recorded is the one recorded-event path, on the handler's collaborators.
func (h *Handler) recorded() *recorded.Path {
	return &recorded.Path{Store: h.d.Store, Events: h.d.Events, Receipts: h.d.Receipts, ReceiptWindow: h.d.ReceiptWindow,
		Metrics: h.d.Metrics, Now: h.now}
}

// link records trackingID → id; a conflict (the tracking id names another
// request) is logged, not retried: nothing can re-point it.
func (h *Handler) link(ctx context.Context, trackingID, id string, md map[string]string, log *slog.Logger) error {
	err := h.d.Store.Link(ctx, trackingID, id, md)
	if errors.Is(err, store.ErrLinkConflict) {
		h.d.Metrics.Count(metric.LinkConflict)
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
	h.d.Metrics.Count(metric.Unjoined)
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
