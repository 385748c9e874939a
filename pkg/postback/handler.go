package postback

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/emf"
	"github.com/mmsgate/mmsgate/pkg/secret"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// Consumer-side interfaces.
type (
	tokenSource interface {
		Get(ctx context.Context) (secret.Values, error)
	}
	records interface {
		Postback(ctx context.Context, trackingID, key string, rank int, state string, lease time.Duration) (store.Decision, store.Joined, error)
		PostbackDone(ctx context.Context, trackingID, key string) error
	}
	publisher interface {
		Publish(ctx context.Context, e delivery.Event) error
	}
)

// kind is what a code means for the message.
type kind struct {
	event string
	rank  int // a state never moves to a lower rank
}

// codes maps every documented delivery code to an event. Keyed on CODE,
// never on ORIGIN: the fallback receipt N202 comes under MMS_MT or SMS_MT.
var codes = map[string]kind{
	"N101": {delivery.Sent, 1}, "N201": {delivery.Sent, 1},
	"N102": {delivery.Delivered, 2}, "N202": {delivery.Delivered, 2},
	"E102": {delivery.Undelivered, 2}, "E202": {delivery.Undelivered, 2}, "N103": {delivery.Undelivered, 2},
	"E101": {delivery.Failed, 2}, "E201": {delivery.Failed, 2},
}

// notices are template-encoding postbacks: logged and counted, no event.
var notices = map[string]bool{"N003": true, "N013": true, "E002": true, "E003": true, "E004": true, "E011": true, "E012": true, "E013": true}

// claimLease is how long one invocation holds a postback it is emitting.
const claimLease = 30 * time.Second

// Deps are the handler's collaborators, built once in main.
type Deps struct {
	Tokens  tokenSource
	Store   records
	Events  publisher
	Log     *slog.Logger
	Metrics *emf.Metrics
}

// Handler handles API Gateway HTTP API (payload 2.0) requests.
type Handler struct {
	d   Deps
	now func() time.Time
}

// NewHandler returns a handler.
func NewHandler(d Deps) *Handler {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Handler{d: d, now: time.Now}
}

// Handle answers one request. Its error is always nil: every outcome is a
// status code (contract §3), and nothing from the request is echoed.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	err := h.handle(ctx, req)
	status := apperr.HTTPStatus(err)
	resp := events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: map[string]string{"Content-Type": "text/plain"}, Body: http.StatusText(status)}
	if status == http.StatusMethodNotAllowed {
		resp.Headers["Allow"] = "POST"
	}
	return resp, nil
}

func (h *Handler) handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) error {
	if err := h.authenticate(ctx, req); err != nil {
		return err
	}
	if m := req.RequestContext.HTTP.Method; m != http.MethodPost {
		h.d.Log.InfoContext(ctx, "method not allowed", "method", m)
		return &apperr.Error{Code: apperr.CodeMethod, Message: "POST only"}
	}
	doc, err := h.body(req)
	if err != nil {
		if apperr.CodeOf(err) == apperr.CodeMalformed {
			h.malformed(ctx, []byte(req.Body), err)
		} else {
			h.d.Log.WarnContext(ctx, "postback rejected", "code", apperr.CodeOf(err), "bytes", len(req.Body))
		}
		return err
	}
	notes, err := Parse(doc)
	if err != nil {
		h.malformed(ctx, doc, err)
		return nil // 200: a retry would not fix it
	}
	for _, n := range notes {
		if err := h.one(ctx, n, doc); err != nil {
			return err
		}
	}
	return nil
}

// authenticate compares the path token with the secret's in constant time.
func (h *Handler) authenticate(ctx context.Context, req events.APIGatewayV2HTTPRequest) error {
	given := req.PathParameters["token"]
	if given == "" {
		if i := strings.LastIndexByte(req.RawPath, '/'); i >= 0 {
			given = req.RawPath[i+1:]
		}
	}
	v, err := h.d.Tokens.Get(ctx)
	if err != nil {
		h.d.Log.ErrorContext(ctx, "cannot read the postback token", "err", err)
		return &apperr.Error{Code: apperr.CodeUnavailable, Message: "secret unavailable", Err: err}
	}
	if v.PostbackToken == "" || subtle.ConstantTimeCompare([]byte(given), []byte(v.PostbackToken)) != 1 {
		h.d.Metrics.Count("Rejected403")
		h.d.Log.WarnContext(ctx, "postback with a wrong or missing token", "sourceIp", req.RequestContext.HTTP.SourceIP)
		return &apperr.Error{Code: apperr.CodeForbidden, Message: "forbidden"}
	}
	return nil
}

// body decodes base64 and the xml= form field, within MaxBody.
func (h *Handler) body(req events.APIGatewayV2HTTPRequest) ([]byte, error) {
	tooLarge := &apperr.Error{Code: apperr.CodeTooLarge, Message: "body over 64 KiB"}
	raw := []byte(req.Body)
	if req.IsBase64Encoded {
		if base64.StdEncoding.DecodedLen(len(req.Body)) > MaxBody+3 {
			return nil, tooLarge
		}
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return nil, &apperr.Error{Code: apperr.CodeMalformed, Message: "body is not base64", Err: err}
		}
		raw = b
	}
	if len(raw) > MaxBody {
		return nil, tooLarge
	}
	ct, _, _ := mime.ParseMediaType(header(req.Headers, "content-type"))
	trimmed := strings.TrimSpace(string(raw[:min(len(raw), 8)]))
	if ct == "application/x-www-form-urlencoded" || strings.HasPrefix(trimmed, "xml=") {
		form, err := url.ParseQuery(string(raw))
		if err != nil || form.Get("xml") == "" {
			return nil, &apperr.Error{Code: apperr.CodeMalformed, Message: "form without an xml field"}
		}
		return []byte(form.Get("xml")), nil
	}
	return raw, nil
}

// one records and publishes one notification.
func (h *Handler) one(ctx context.Context, n Notification, doc []byte) error {
	log := h.d.Log.With("code", n.Code, "trackingId", n.TrackingID)
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
	}
	key := Key(n)
	decision, joined, err := h.d.Store.Postback(ctx, n.TrackingID, key, k.rank, k.event, claimLease)
	if err != nil {
		log.ErrorContext(ctx, "cannot record the postback; Skycore will retry", "err", err)
		return err
	}
	switch decision {
	case store.Duplicate, store.History:
		h.d.Metrics.Count("Duplicates")
		log.InfoContext(ctx, "postback recorded without an event", "decision", decision.String())
		return nil
	case store.Busy:
		log.InfoContext(ctx, "same postback in progress elsewhere; Skycore will retry")
		return &apperr.Error{Code: apperr.CodeBusy, Message: "in progress"}
	}
	ev := Event(n, k.event)
	ev.ID = joined.ID
	if ev.ID == "" && sendreq.ValidID(n.ClientReference) {
		ev.ID = n.ClientReference // the postback raced the sender's bookkeeping
	}
	if err := h.d.Events.Publish(ctx, ev); err != nil {
		log.ErrorContext(ctx, "cannot publish the delivery event; Skycore will retry", "err", err)
		return err
	}
	if err := h.d.Store.PostbackDone(ctx, n.TrackingID, key); err != nil {
		// The event is out; a retry after the lease could publish it again.
		log.WarnContext(ctx, "event published, not marked done", "err", err)
	}
	log.InfoContext(ctx, "delivery event", "id", ev.ID, "event", ev.Event)
	return nil
}

// malformed logs a truncated, printable copy and counts it.
func (h *Handler) malformed(ctx context.Context, doc []byte, err error) {
	h.d.Metrics.Count("Malformed")
	h.d.Log.WarnContext(ctx, "postback can never be processed; acknowledged", "err", err, "bytes", len(doc), "head", Snippet(doc, 200))
}

// Key identifies a postback for de-duplication: Skycore's retries repeat
// CODE, STATUS and TIMESTAMP exactly.
func Key(n Notification) string {
	sum := sha256.Sum256([]byte(n.Code + "\x00" + n.Status + "\x00" + n.Timestamp + "\x00" + n.SentAs))
	return n.Code + "_" + hex.EncodeToString(sum[:8])
}

// Event is the delivery event for n (contract §2 field mapping), without id.
func Event(n Notification, kind string) delivery.Event {
	ev := delivery.Event{Event: kind, TrackingID: n.TrackingID, Code: n.Code, Status: n.Status, SentAs: n.SentAs,
		To: n.To, From: n.From, SPID: n.SPID, Handset: n.Handset, AggregatorID: n.AggregatorID,
		Details: n.StatusDetails, OccurredAt: n.Timestamp}
	if v, err := strconv.ParseInt(n.MMSID, 10, 64); err == nil {
		ev.MMSID = &v
	}
	return ev
}

// Classify returns the event kind of a code: "" with notice=true for
// template notices, ok=false for unknown codes.
func Classify(code string) (event string, notice, ok bool) {
	if notices[code] {
		return "", true, true
	}
	k, ok := codes[code]
	return k.event, false, ok
}

// Snippet is a printable prefix of b for logs.
func Snippet(b []byte, max int) string {
	s := strings.ToValidUTF8(string(b[:min(len(b), max)]), "?")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func metricCode(c string) string {
	if _, ok := codes[c]; ok || notices[c] {
		return c
	}
	return "other" // keep the metric's dimensions bounded
}

func strconvQuote(s string) string { return strconv.Quote(Snippet([]byte(s), 20)) }

func header(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}
