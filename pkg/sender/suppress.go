package sender

// Suppression: numbers (and numbers within a campaign) refused for good
// are not called again until SUPPRESS_TTL ends.

import (
	"context"
	"slices"
	"time"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/metric"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// suppressionKeys are the keys a request is checked against: its number,
// and its number within its campaign.
func suppressionKeys(req *sendreq.Request) []string {
	keys := []string{store.SuppressionKey(req.To, "")}
	if req.CampaignRef != "" {
		keys = append(keys, store.SuppressionKey(req.To, req.CampaignRef))
	}
	return keys
}

// suppressed returns the live suppression of the request's number, if any.
func (h *Handler) suppressed(ctx context.Context, req *sendreq.Request) (*store.Suppression, error) {
	if len(h.cfg.SuppressCodes) == 0 {
		return nil, nil
	}
	for _, k := range suppressionKeys(req) {
		if sup, err := h.d.Store.Suppressed(ctx, k); sup != nil || err != nil {
			return sup, err
		}
	}
	return nil, nil
}

// suppress puts the number on the suppression list when Skycore refused it
// for a number-level reason; E715 (campaign-specific) only with the
// request's campaign.
func (h *Handler) suppress(ctx context.Context, j *job, e *apperr.Error) {
	if !slices.Contains(h.cfg.SuppressCodes, string(e.Code)) {
		return
	}
	key := store.SuppressionKey(j.req.To, "")
	if e.Code == "E715" {
		if j.req.CampaignRef == "" {
			return
		}
		key = store.SuppressionKey(j.req.To, j.req.CampaignRef)
	}
	if err := h.d.Store.Suppress(ctx, key, string(e.Code), j.req.ID, h.cfg.SuppressTTL); err != nil {
		j.log.WarnContext(ctx, "cannot record the suppression; the next request to this number will call Skycore", "err", err)
		return
	}
	h.d.Metrics.Count(metric.SuppressionAdded)
	j.log.InfoContext(ctx, "number suppressed", "code", e.Code, "until", h.now().Add(h.cfg.SuppressTTL).UTC().Format(time.RFC3339))
}
