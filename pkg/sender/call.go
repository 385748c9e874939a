package sender

// The Skycore call, with the API key re-read once on E104.

import (
	"context"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
)

// call sends once; on E104 it refreshes the key once and sends again. The
// call ends Margin before the invocation's deadline, so that its outcome
// can still be recorded.
func (h *Handler) call(ctx context.Context, req *sendreq.Request) (*skycore.Response, error) {
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-h.cfg.Margin))
		defer cancel()
	}
	if h.limiter != nil {
		// Wait only as long as a useful call can still start after the wait.
		wctx := ctx
		if dl, ok := ctx.Deadline(); ok {
			var cancel context.CancelFunc
			wctx, cancel = context.WithDeadline(ctx, dl.Add(-h.cfg.MinCall))
			defer cancel()
		}
		if err := h.limiter.Wait(wctx); err != nil {
			return nil, &apperr.Error{Code: apperr.CodeTimeout, Class: apperr.Retry, Op: "sender.rate",
				Message: "no rate-limit token before the deadline; not sent", Err: err}
		}
	}
	keys, err := h.d.Keys.Get(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := h.d.Skycore.SendSavedMMS(ctx, keys.APIKey, req)
	if !skycore.RefreshesKey(apperr.CodeOf(err)) {
		return resp, err
	}
	fresh, rerr := h.d.Keys.Refresh(ctx, keys)
	if rerr != nil || fresh.APIKey == keys.APIKey {
		return resp, err // same key: E104 stands, a config problem
	}
	h.d.Log.InfoContext(ctx, "API key refreshed after E104")
	return h.d.Skycore.SendSavedMMS(ctx, fresh.APIKey, req)
}

// refine applies who is at fault (docs/codes.md) to a Skycore answer:
// E100 and E111 are the request's fault (rejected) or the deployment's
// (config: retried, alarmed). Other errors keep their class.
func (h *Handler) refine(ctx context.Context, j *job, e *apperr.Error) *apperr.Error {
	if e.Code != "E100" && e.Code != "E111" {
		return e
	}
	class, why := h.blame.Class(e, j.req.ID, j.req.From)
	j.log.InfoContext(ctx, "who is at fault: "+why, "code", e.Code, "class", class.String())
	if class == e.Class {
		return e
	}
	c := *e // the client's error is not shared, but stays as it was
	c.Class = class
	return &c
}
