package postback

import (
	"context"

	"github.com/mmsgate/mmsgate/pkg/emf"
	"github.com/mmsgate/mmsgate/pkg/metric"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// MaxUnjoined bounds what one postback can create for tracking ids and
// CLIENT_REFERENCEs that name no request of ours (anyone with the token,
// or a misrouted account, can post up to 100 notifications in the batched
// form): at most this many notifications of one postback are recorded
// and published with "id": "". Past it, a notification is first checked
// with reads only: one of a known request is processed as usual, any
// other is acknowledged without a write or an event, and counted
// (UnjoinedCapped). Such tracking items are kept store.UnlinkedTTL, not
// the records' TTL.
const MaxUnjoined = 10

type unjoinedKey struct{}

// unjoinedCount counts one postback's notifications published without a
// request id (unjoined, join.go).
type unjoinedCount struct{ n int }

func countUnjoined(ctx context.Context) {
	if c, ok := ctx.Value(unjoinedKey{}).(*unjoinedCount); ok {
		c.n++
	}
}

// linkReader is implemented by the store (store.LinkedID); a records fake
// without it caps nothing.
type linkReader interface {
	LinkedID(ctx context.Context, trackingID string) (string, error)
}

// notifications records and publishes a postback's notifications in
// order, capping the unjoined ones (MaxUnjoined).
func (h *Handler) notifications(ctx context.Context, notes []Notification, doc []byte, owner string) error {
	c := &unjoinedCount{}
	ctx = context.WithValue(ctx, unjoinedKey{}, c)
	capped := 0
	defer func() {
		if capped > 0 {
			h.d.Metrics.Put(metric.UnjoinedCapped, emf.Count, float64(capped))
			h.d.Log.WarnContext(ctx, "notifications naming no request of ours acknowledged without an event", "capped", capped,
				"notifications", len(notes), "limit", MaxUnjoined)
		}
	}()
	for _, n := range notes {
		if c.n >= MaxUnjoined {
			known, err := h.known(ctx, n)
			if err != nil {
				return err
			}
			if !known {
				capped++
				continue
			}
		}
		if err := h.one(ctx, n, doc, owner); err != nil {
			return err
		}
	}
	return nil
}

// known reports, with reads only, whether n names a request of ours: its
// tracking id is linked, or its CLIENT_REFERENCE has a record.
func (h *Handler) known(ctx context.Context, n Notification) (bool, error) {
	lr, ok := h.d.Store.(linkReader)
	if !ok {
		return true, nil
	}
	id, err := lr.LinkedID(ctx, store.KeyOf(n.TrackingID)) // as one keys it
	if err != nil || id != "" {
		return id != "", err
	}
	if !sendreq.ValidID(n.ClientReference) {
		return false, nil
	}
	m, err := h.d.Store.Get(ctx, n.ClientReference)
	return m != nil, err
}
