package postback

import (
	"context"
	"log/slog"

	"github.com/mmsgate/mmsgate/pkg/store"
)

// receiptNoter is implemented by the store (store.NoteReceiptTracking); a
// records fake without it notes nothing.
type receiptNoter interface {
	NoteReceiptTracking(ctx context.Context, id, trackingID string) error
}

var _ receiptNoter = (*store.Store)(nil)

// noteReceiptTracking tells id's receipt check which tracking id its
// postbacks come with, for a request accepted without a usable one of its
// own (NO_TRACKINGID, or too long to key): otherwise the check, seeing no
// receipt, would publish unconfirmed after delivered. An error (a check
// publishing unconfirmed right now, or DynamoDB) is answered 503: the
// retry publishes this postback's event after the unconfirmed one.
func (h *Handler) noteReceiptTracking(ctx context.Context, trackingID, id string, log *slog.Logger) error {
	n, ok := h.d.Store.(receiptNoter)
	if !ok {
		return nil
	}
	if err := n.NoteReceiptTracking(ctx, id, trackingID); err != nil {
		log.WarnContext(ctx, "cannot note the tracking id for the receipt check; Skycore will retry", "id", id, "err", err)
		return err
	}
	return nil
}
