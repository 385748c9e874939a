package sender

// Suppression: numbers (and numbers within a campaign) refused for good
// are not called again until SUPPRESS_TTL ends (E114: until lifted), nor
// numbers that opted out of a code (docs/events.md "Suppression").

import (
	"context"
	"slices"
	"time"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/metric"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// suppressed returns the live suppression of the request's number, if
// any: an opt-out of its number from its code (req.From, defaults
// applied), then its number, then its number within its campaign
// (store.SuppressedFor, consistent reads after the claim: a request
// claimed after an opt-out is recorded is refused). Opt-outs and operator
// entries refuse even when SUPPRESS_CODES is none; entries Skycore's codes
// made only when it is not.
func (h *Handler) suppressed(ctx context.Context, req *sendreq.Request) (*store.Suppression, error) {
	sup, err := h.d.Store.SuppressedFor(ctx, req.To, req.From, req.CampaignRef)
	if sup != nil && len(h.cfg.SuppressCodes) == 0 && sup.Source != store.SourceKeyword && sup.Source != store.SourceOperator {
		return nil, err
	}
	return sup, err
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
	until := h.now().Add(h.cfg.SuppressTTL).UTC().Format(time.RFC3339)
	if store.UntilLifted(string(e.Code)) {
		until = "lifted" // E114: blacklisted until someone lifts it
	}
	j.log.InfoContext(ctx, "number suppressed", "code", e.Code, "until", until)
}
