package postback

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
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
	"github.com/mmsgate/mmsgate/pkg/keyword"
	"github.com/mmsgate/mmsgate/pkg/metric"
	"github.com/mmsgate/mmsgate/pkg/recorded"
	"github.com/mmsgate/mmsgate/pkg/secret"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// Consumer-side interfaces.
type (
	tokenSource interface {
		Get(ctx context.Context) (secret.Values, error)
	}
	records interface {
		Postback(ctx context.Context, trackingID, key string, rank int, state, owner string, hold time.Time) (store.Decision, store.Joined, error)
		PostbackDone(ctx context.Context, trackingID, key, owner string, settled delivery.About) error
		PostbackRelease(ctx context.Context, trackingID, owner string) error
		Get(ctx context.Context, id string) (*store.Message, error)
		AcceptByPostback(ctx context.Context, id, trackingID, owner string, hold time.Time) (bool, *store.Message, error)
		TakeEvent(ctx context.Context, id, owner string, hold time.Time) (bool, *store.Message, error)
		EventSent(ctx context.Context, id string) error
		ReleaseEvent(ctx context.Context, id, owner string) error
		Link(ctx context.Context, trackingID, id string, md map[string]string) error
	}
	publisher interface {
		Publish(ctx context.Context, e delivery.Event) error
	}
)

var _ records = (*store.Store)(nil)

// kind is what a code means for the message.
type kind struct {
	event string
	rank  int // a state never moves to a lower rank
}

// classify is what a postback CODE means (pkg/skycore's table): known is
// false for a code that is neither a receipt nor a notice.
func classify(code string) (k kind, notice, known bool) {
	if skycore.Notice(code) {
		return kind{}, true, true
	}
	event, ok := skycore.ReceiptEvent(code)
	return kind{event: event, rank: delivery.Rank(event)}, false, ok
}

// claimLease is how long one invocation holds a postback it is emitting
// (the tracking id's emitter slot, or a request's pending event). It
// outlasts the function's timeout (10 s), so a hold never ends while its
// holder still runs.
const claimLease = 30 * time.Second

// JoinWindow is how long after the first postback of a tracking id that
// nobody linked (and no usable CLIENT_REFERENCE) its postbacks are answered
// 503, waiting for the sender's link; after it they go out with "id": "".
const JoinWindow = 10 * time.Minute

// defaultWaits are the short pauses within one invocation before a
// postback that must wait (another holder, a link not written yet) is
// answered 503: most such races last milliseconds.
var defaultWaits = []time.Duration{50 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond}

// Deps are the handler's collaborators, built once in main.
type Deps struct {
	Tokens tokenSource
	Store  records
	Events publisher
	// Receipts schedules the receipt check of an acceptance this function
	// publishes, ReceiptWindow after it (RECEIPT_WINDOW); nil or 0 is off.
	Receipts      recorded.Receipts
	ReceiptWindow time.Duration
	Log           *slog.Logger
	Metrics       *emf.Metrics
	// Keywords are the opt-out and opt-in keywords of inbound messages
	// (OPTOUT_KEYWORDS, OPTIN_KEYWORDS); the zero value matches none.
	Keywords keyword.Lists
}

// Handler handles API Gateway HTTP API (payload 2.0) requests.
type Handler struct {
	d     Deps
	now   func() time.Time
	waits []time.Duration
	sleep func(ctx context.Context, d time.Duration) bool
}

// NewHandler returns a handler.
func NewHandler(d Deps) *Handler {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Handler{d: d, now: time.Now, waits: defaultWaits, sleep: sleep}
}

// sleep waits d unless ctx ends first (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Handle answers one request. Its error is always nil: every outcome is a
// status code (docs/postback.md), and nothing from the request is echoed.
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
	if done, err := h.mo(ctx, doc, "postback/"+requestID(ctx, req)); done {
		return err
	}
	notes, err := Parse(doc)
	if err != nil {
		h.malformed(ctx, doc, err)
		return nil // 200: a retry would not fix it
	}
	return h.notifications(ctx, notes, doc, "postback/"+requestID(ctx, req))
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
		h.d.Metrics.Count(metric.Rejected403)
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
	// Sniff: a body that starts with '<' (after whitespace and a BOM) is
	// XML whatever its Content-Type says; otherwise the xml= form field.
	if doc := trimXMLStart(raw); len(doc) > 0 && doc[0] == '<' {
		return doc, nil
	}
	ct, _, _ := mime.ParseMediaType(header(req.Headers, "content-type"))
	trimmed := strings.TrimSpace(string(raw[:min(len(raw), 8)]))
	if ct == "application/x-www-form-urlencoded" || strings.HasPrefix(trimmed, "xml=") {
		form, err := url.ParseQuery(string(raw))
		if err != nil || form.Get("xml") == "" {
			return nil, &apperr.Error{Code: apperr.CodeMalformed, Message: "form without an xml field"}
		}
		return trimXMLStart([]byte(form.Get("xml"))), nil
	}
	return raw, nil
}

// trimXMLStart drops leading whitespace and a UTF-8 byte order mark.
func trimXMLStart(b []byte) []byte {
	for {
		switch {
		case bytes.HasPrefix(b, []byte("\uFEFF")):
			b = b[3:]
		case len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n'):
			b = b[1:]
		default:
			return b
		}
	}
}

// malformed logs a truncated, printable copy and counts it.
func (h *Handler) malformed(ctx context.Context, doc []byte, err error) {
	h.d.Metrics.Count(metric.Malformed)
	h.d.Log.WarnContext(ctx, "postback can never be processed; acknowledged", "err", err, "bytes", len(doc), "head", Snippet(doc, 200))
}

// Key identifies a postback for de-duplication: Skycore's retries repeat
// CODE, STATUS and TIMESTAMP exactly.
func Key(n Notification) string {
	sum := sha256.Sum256([]byte(n.Code + "\x00" + n.Status + "\x00" + n.Timestamp + "\x00" + n.SentAs))
	return n.Code + "_" + hex.EncodeToString(sum[:8])
}

// Event is the delivery event for n (docs/events.md's field mapping),
// without id.
func Event(n Notification, kind string) delivery.Event {
	ev := delivery.New(kind, about(n), time.Time{})
	ev.Code, ev.Status, ev.SentAs, ev.Details = n.Code, n.Status, n.SentAs, n.StatusDetails
	ev.SPID, ev.Handset, ev.AggregatorID = n.SPID, n.Handset, n.AggregatorID
	ev.OccurredAt = n.Timestamp // Skycore's, as it wrote it
	return ev
}

// about is what the postback tells every event about its request.
func about(n Notification) delivery.About {
	return delivery.About{TrackingID: n.TrackingID, To: n.To, From: n.From, MMSID: n.MMSID}
}

// Classify returns the event kind of a code: "" with notice=true for
// template notices, ok=false for unknown codes.
func Classify(code string) (event string, notice, ok bool) {
	k, notice, ok := classify(code)
	return k.event, notice, ok
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
	if _, _, ok := classify(c); ok {
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

// The postback's XML shapes are vendor knowledge, kept in pkg/skycore
// beside the send side; these names are the handler's view of them.
type Notification = skycore.Notification

// ErrMalformed marks a body that can never be processed.
var ErrMalformed = skycore.ErrMalformedPostback

// MaxBody is the largest postback body read.
const MaxBody = skycore.MaxPostbackBody

// Parse reads one postback document (skycore.ParsePostback).
func Parse(body []byte) ([]Notification, error) { return skycore.ParsePostback(body) }
