package postback

import (
	"context"
	"errors"
	"log/slog"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/inbound"
	"github.com/mmsgate/mmsgate/pkg/metric"
	"github.com/mmsgate/mmsgate/pkg/skycore"
)

// inboundStore is what an inbound message needs of the store (pkg/store
// implements it); a records fake without it answers inbound postbacks 500.
type inboundStore = inbound.Store

// mo handles doc when it is an inbound (MO) postback: done is false for
// any other document (a delivery postback). An inbound message is
// answered 200 once its events are out (docs/events.md "Inbound
// messages"), 200 too when it can never be processed, 503 while another
// invocation handles the same message, and 5xx when it could not be
// recorded, so that Skycore retries it.
func (h *Handler) mo(ctx context.Context, doc []byte, owner string) (done bool, err error) {
	m, err := skycore.ParseInbound(doc)
	switch {
	case errors.Is(err, skycore.ErrNotInbound):
		return false, nil
	case err != nil:
		h.d.Metrics.Count(metric.InboundMalformed)
		h.malformed(ctx, doc, err)
		return true, nil // 200: a retry would not fix it
	}
	log := h.d.Log.With("code", m.Code, "trackingId", Snippet([]byte(m.MessageID()), 80))
	st, ok := h.d.Store.(inboundStore)
	if !ok {
		log.ErrorContext(ctx, "the store cannot record inbound messages")
		return true, &apperr.Error{Code: apperr.CodeInternal, Message: "inbound messages not supported"}
	}
	publish := func(ctx context.Context, e inbound.Event) error {
		ev := delivery.New(e.Kind, delivery.About{TrackingID: e.TrackingID, To: e.To, From: e.From}, h.now())
		ev.Code, ev.SPID, ev.Text, ev.Subject, ev.Files, ev.Keyword = e.Code, e.SPID, e.Text, e.Subject, e.Files, e.Keyword
		ev.OccurredAt = e.OccurredAt // Skycore's, as it wrote it
		ev.RecordedAt = delivery.Stamp(h.now())
		return h.recorded().Publish(ctx, log, ev, nil, nil)
	}
	for attempt := 0; ; attempt++ {
		res, err := inbound.Handle(ctx, st, h.d.Keywords, m, owner, h.now().Add(claimLease), publish)
		if err != nil {
			h.d.Metrics.Count(metric.StoreError)
			log.ErrorContext(ctx, "cannot record the inbound message; Skycore retries it", "err", err)
			return true, err
		}
		if res.Outcome == inbound.Busy {
			if attempt < len(h.waits) && h.sleep(ctx, h.waits[attempt]) {
				continue
			}
			log.InfoContext(ctx, "inbound message handled by another invocation; answered 503")
			return true, &apperr.Error{Code: apperr.CodeBusy, Message: "in progress"}
		}
		h.counted(ctx, log, res)
		return true, nil
	}
}

// counted logs and counts what Handle did.
func (h *Handler) counted(ctx context.Context, log *slog.Logger, res inbound.Result) {
	switch res.Outcome {
	case inbound.Duplicate:
		h.d.Metrics.Count(metric.Duplicates)
	default:
		h.d.Metrics.Count(metric.Inbound)
	}
	switch res.Suppression {
	case inbound.KindOptOut:
		h.d.Metrics.Count(metric.OptOuts)
	case inbound.KindOptIn:
		h.d.Metrics.Count(metric.OptIns)
	}
	log.InfoContext(ctx, "inbound message", "outcome", res.Outcome.String(), "published", res.Kinds, "suppression", res.Suppression)
}
