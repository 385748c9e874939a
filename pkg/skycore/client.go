package skycore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
)

// Defaults of the client.
const (
	DefaultEndpoint = "https://secure.skycore.com/API/wxml/1.3/index.php"
	DefaultTimeout  = 20 * time.Second
	// MaxResponse bounds what is read of an answer: a RESPONSE is a few
	// hundred bytes, anything larger is an error page.
	MaxResponse = 64 << 10
	// deadlineMargin is left of the caller's deadline to record the outcome.
	deadlineMargin = 500 * time.Millisecond
)

const opSend = "skycore.SendSavedMMS"

// Client posts sendSavedMMS requests. It is safe for concurrent use and
// meant to be built once per process.
type Client struct {
	httpClient *http.Client
	endpoint   string
	timeout    time.Duration
	bufs       sync.Pool
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient replaces the HTTP client (tests, custom transports).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.httpClient = h } }

// WithTimeout sets the longest one call may take (SKYCORE_TIMEOUT).
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// New returns a client for endpoint (SKYCORE_API_URL).
func New(endpoint string, opts ...Option) *Client {
	c := &Client{endpoint: endpoint, timeout: DefaultTimeout}
	for _, o := range opts {
		o(c)
	}
	if c.httpClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64 // one batch runs up to SEND_CONCURRENCY calls at once
		// The context deadline governs each call; this is only a backstop.
		c.httpClient = &http.Client{Transport: t, Timeout: c.timeout + 5*time.Second}
	}
	c.bufs.New = func() any { return new(bytes.Buffer) }
	return c
}

// Timeout is the per-call limit.
func (c *Client) Timeout() time.Duration { return c.timeout }

// SendSavedMMS sends r, which must have been validated. On success it
// returns the response with a tracking id. Every failure is an
// *apperr.Error whose Class says whether to retry; transport failures are
// Retry with code TIMEOUT, NETWORK or HTTP_<status>. The API key never
// appears in an error.
func (c *Client) SendSavedMMS(ctx context.Context, apiKey string, r *sendreq.Request) (*Response, error) {
	const op = opSend
	ctx, cancel := c.callContext(ctx)
	defer cancel()

	buf := c.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	AppendRequest(buf, apiKey, r)
	body := "xml=" + url.QueryEscape(buf.String())
	c.bufs.Put(buf)

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, strings.NewReader(body))
	if err != nil {
		return nil, &apperr.Error{Code: apperr.CodeInternal, Class: apperr.Config, Op: op, Message: "bad SKYCORE_API_URL", Err: redactErr(err, apiKey)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
	req.Header.Set("Accept", "application/xml, text/xml")
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return nil, transportError(ctx, op, err, apiKey)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return nil, transportError(ctx, op, err, apiKey)
	}
	return checkResponse(op, resp, raw, apiKey)
}

// callContext bounds one call by the client timeout and the caller's
// deadline less a margin for bookkeeping.
func (c *Client) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	d := c.timeout
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl) - deadlineMargin; left < d {
			d = left
		}
	}
	return context.WithTimeout(ctx, d)
}

// checkResponse is the one place that turns an HTTP answer into a Response
// or a classified error.
func checkResponse(op string, resp *http.Response, raw []byte, apiKey string) (*Response, error) {
	status := resp.StatusCode
	if len(raw) > MaxResponse {
		if ev := ScanAnswer(raw[:MaxResponse]); ev.Taken() {
			return nil, ambiguous(op, status, fmt.Sprintf("an answer over %d bytes that says Skycore took the request", MaxResponse), ev, raw[:MaxResponse], apiKey)
		}
		return nil, &apperr.Error{Code: apperr.HTTPCode(status), Class: apperr.Retry, Op: op,
			Message: fmt.Sprintf("answer over %d bytes (HTTP %d)", MaxResponse, status)}
	}
	r, perr := ParseResponse(raw)
	if perr != nil {
		if ev := ScanAnswer(raw); ev.Taken() {
			return nil, ambiguous(op, status, "an answer that is not a plain RESPONSE but says Skycore took the request", ev, raw, apiKey)
		}
		// The body goes to the logs (redacted), never into an event.
		e := &apperr.Error{Code: apperr.HTTPCode(status), Class: apperr.Retry, Op: op,
			Message: fmt.Sprintf("HTTP %d with a body that is not a RESPONSE", status), Err: errors.New(snippet(raw, apiKey))}
		switch {
		case status == http.StatusTooManyRequests:
			e.Wait = retryAfter(resp.Header.Get("Retry-After"))
		case status >= 400 && status < 500:
			// Wrong URL, WAF, proxy: retrying the same call will not help
			// until someone fixes the deployment.
			e.Class = apperr.Config
		}
		return nil, e
	}
	// Only an answer that says Success and nothing else is accepted; one
	// that says Success (or carries a tracking id) and anything else is in
	// doubt, never a failure to send again at once.
	success, rep := strings.EqualFold(r.Status, StatusSuccess), repeats(raw)
	if success && r.ErrorCode == "" && !rep {
		return r, nil // without TRACKINGID too: Skycore took it (docs/events.md, NO_TRACKINGID)
	}
	if success || r.TrackingID != "" || rep {
		ev := ScanAnswer(raw)
		if success && r.ErrorCode == "" && ev.clean() {
			return r, nil // the same Success twice
		}
		if ev.Taken() || success || r.TrackingID != "" {
			return nil, ambiguous(op, status, "an answer that says Skycore took the request and something else", ev, raw, apiKey)
		}
	}
	switch {
	case r.ErrorCode != "":
		return nil, vendorError(op, r, apiKey)
	default:
		return nil, &apperr.Error{Code: apperr.HTTPCode(status), Class: apperr.Retry, Op: op,
			Message: "STATUS without ERRORCODE", Err: errors.New(snippet([]byte(r.Status), apiKey))}
	}
}

// vendorError classifies an ERRORCODE with the table in codes.go.
func vendorError(op string, r *Response, apiKey string) *apperr.Error {
	code := apperr.Code(strings.ToUpper(r.ErrorCode))
	class, _ := Class(code)
	return &apperr.Error{Code: code, Class: class, Op: op, Message: snippet([]byte(r.ErrorInfo), apiKey), Wait: wait(code, r.ErrorInfo)}
}

// MaybeSent reports whether a failed call may still have reached Skycore:
// it timed out or its connection broke after the request could have been
// written, or its answer says Skycore took it among other things
// (AMBIGUOUS). A refused connection, or any other answer, is not in doubt.
func MaybeSent(e *apperr.Error) bool {
	if e.Op == opSend && e.Code == apperr.CodeAmbiguous {
		return true // the answer says Skycore took it
	}
	if e.Op != opSend || (e.Code != apperr.CodeTimeout && e.Code != apperr.CodeNetwork) {
		return false
	}
	var oe *net.OpError
	return !(errors.As(e.Err, &oe) && oe.Op == "dial")
}

func transportError(ctx context.Context, op string, err error, apiKey string) *apperr.Error {
	e := &apperr.Error{Code: apperr.CodeNetwork, Class: apperr.Retry, Op: op, Err: redactErr(err, apiKey)}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()):
		e.Code, e.Message = apperr.CodeTimeout, "no answer from Skycore in time"
	default:
		e.Message = "cannot reach Skycore"
	}
	return e
}

func retryAfter(v string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 && n < 86400 {
		return time.Duration(n) * time.Second
	}
	return 0
}
