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

// noteReceiptTracking tells the receipt check of m which tracking id its
// postbacks come with, for a request accepted without a usable one of its
// own (NO_TRACKINGID, or too long to key): otherwise the check, seeing no
// receipt, would publish unconfirmed after delivered. It runs on every
// postback of such a request until the request is settled (a retry after
// a failure notes again; the store keeps the first). An error (a check
// publishing unconfirmed right now, or DynamoDB) is answered 503: the
// retry publishes this postback's event after the unconfirmed one.
func (h *Handler) noteReceiptTracking(ctx context.Context, m *store.Message, trackingID string, log *slog.Logger) error {
	nt, ok := h.d.Store.(receiptNoter)
	if !ok || m.State != store.StateAccepted || store.Keyable(m.TrackingID) {
		return nil
	}
	if err := nt.NoteReceiptTracking(ctx, m.ID, trackingID); err != nil {
		log.WarnContext(ctx, "cannot note the tracking id for the receipt check; Skycore will retry", "id", m.ID, "err", err)
		return err
	}
	return nil
}
