package skycore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
)

const prefix = "/API/wxml/1.3/index.php"

// setup serves handler under the API path only, so a client built with the
// wrong URL fails loudly.
func setup(t *testing.T, handler http.HandlerFunc) *Client {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc(prefix, handler)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return New(srv.URL+prefix, WithTimeout(2*time.Second))
}

func request() *sendreq.Request {
	return &sendreq.Request{ID: "id-1", To: "17743199144", From: "60856", MMSID: "48211"}
}

func reply(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, body)
	}
}

func TestSendSavedMMSRequestShape(t *testing.T) {
	var got url.Values
	var ctype, method string
	c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		method, ctype = r.Method, r.Header.Get("Content-Type")
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		got = r.PostForm
		reply(`<RESPONSE><STATUS>Success</STATUS><TRACKINGID>T1</TRACKINGID></RESPONSE>`)(w, r)
	})
	if _, err := c.SendSavedMMS(context.Background(), testKey, request()); err != nil {
		t.Fatal(err)
	}
	if method != http.MethodPost || !strings.HasPrefix(ctype, "application/x-www-form-urlencoded") {
		t.Errorf("method, content type = %s, %s", method, ctype)
	}
	if len(got) != 1 || !strings.Contains(got.Get("xml"), "<ACTION>sendSavedMMS</ACTION>") ||
		!strings.Contains(got.Get("xml"), "<API_KEY>"+testKey+"</API_KEY>") {
		t.Errorf("form = %v, want one field xml with the request", got)
	}
}

func TestSendSavedMMSSuccess(t *testing.T) {
	c := setup(t, reply(`<?xml version="1.0"?>
<RESPONSE>
  <STATUSDETAILS>MMS request accepted and queued for delivery</STATUSDETAILS>
  <TO>17743199144</TO><FROM>60856</FROM>
  <TRACKINGID>DrXAFP-Ylpc-JZL</TRACKINGID><MMSID>48211</MMSID>
  <STATUS>Success</STATUS><EXTRA>ignored</EXTRA>
</RESPONSE>`))
	got, err := c.SendSavedMMS(context.Background(), testKey, request())
	if err != nil {
		t.Fatal(err)
	}
	want := &Response{Status: "Success", MMSID: "48211", TrackingID: "DrXAFP-Ylpc-JZL", To: "17743199144", From: "60856",
		StatusDetails: "MMS request accepted and queued for delivery"}
	got.XMLName.Local = ""
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SendSavedMMS mismatch (-want +got):\n%s", diff)
	}
}

func TestSendSavedMMSFailures(t *testing.T) {
	failure := func(code, info string) string {
		return fmt.Sprintf(`<RESPONSE><STATUS>Failure</STATUS><ERRORCODE>%s</ERRORCODE><ERRORINFO>%s</ERRORINFO></RESPONSE>`, code, info)
	}
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		wantCode  apperr.Code
		wantClass apperr.Class
		wantWait  time.Duration
	}{
		{"permanent E110", reply(failure("E110", "Invalid receiver number.")), "E110", apperr.Permanent, 0},
		{"config E713", reply(failure("E713", "There is billing problem on your account")), "E713", apperr.Config, 0},
		{"config E104", reply(failure("E104", "User Authentication Failed.")), "E104", apperr.Config, 0},
		{"retry E106 with seconds", reply(failure("E106", "You can call API every 30 seconds.")), "E106", apperr.Retry, 30 * time.Second},
		{"retry E106 without seconds", reply(failure("E106", "You can call API every X seconds.")), "E106", apperr.Retry, 0},
		{"retry E503", reply(failure("E503", "Internal error.")), "E503", apperr.Retry, 0},
		{"unknown code is permanent", reply(failure("E9999", "Brand new")), "E9999", apperr.Permanent, 0},
		{"lower-case code", reply(failure("e113", "throughput")), "E113", apperr.Retry, 0},
		{"status without code", reply(`<RESPONSE><STATUS>Failure</STATUS></RESPONSE>`), "HTTP_200", apperr.Retry, 0},
		{"HTTP 500 empty", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, "HTTP_500", apperr.Retry, 0},
		{"HTTP 503 HTML", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(503)
			io.WriteString(w, "<html><body>Service Unavailable</body></html>")
		}, "HTTP_503", apperr.Retry, 0},
		{"HTTP 200 HTML page", reply("<!DOCTYPE html><html><head><title>Maintenance</title></head></html>"), "HTTP_200", apperr.Retry, 0},
		{"HTTP 429 Retry-After", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(429)
		}, "HTTP_429", apperr.Retry, 7 * time.Second},
		{"HTTP 404 is config", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, "HTTP_404", apperr.Config, 0},
		{"truncated XML", reply(`<RESPONSE><STATUS>Succ`), "HTTP_200", apperr.Retry, 0},
		{"not XML", reply(`OK`), "HTTP_200", apperr.Retry, 0},
		{"empty body", reply(``), "HTTP_200", apperr.Retry, 0},
		{"body over the limit", reply(`<RESPONSE><STATUS>Failure</STATUS><STATUSDETAILS>` + strings.Repeat("x", MaxResponse) + `</STATUSDETAILS></RESPONSE>`), "HTTP_200", apperr.Retry, 0},
		{"connection reset", func(w http.ResponseWriter, r *http.Request) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		}, apperr.CodeNetwork, apperr.Retry, 0},
		{"body cut mid-way", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "500")
			io.WriteString(w, "<RESPONSE><STATUS>")
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}, apperr.CodeNetwork, apperr.Retry, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := setup(t, tt.handler)
			resp, err := c.SendSavedMMS(context.Background(), testKey, request())
			e, ok := apperr.As(err)
			if !ok {
				t.Fatalf("SendSavedMMS = %+v, %v; want an *apperr.Error", resp, err)
			}
			if e.Code != tt.wantCode || e.Class != tt.wantClass || e.Wait != tt.wantWait {
				t.Errorf("SendSavedMMS error = %s/%s/%v, want %s/%s/%v (%v)", e.Code, e.Class, e.Wait, tt.wantCode, tt.wantClass, tt.wantWait, e)
			}
			if strings.Contains(err.Error(), testKey) {
				t.Errorf("error leaks the API key")
			}
		})
	}
}

func TestSendSavedMMSUnknownCodeIsFlagged(t *testing.T) {
	c := setup(t, reply(`<RESPONSE><STATUS>Failure</STATUS><ERRORCODE>E4242</ERRORCODE></RESPONSE>`))
	_, err := c.SendSavedMMS(context.Background(), testKey, request())
	e, _ := apperr.As(err)
	if e == nil || Known(e) {
		t.Fatalf("want an unknown-code error, got %v", err)
	}
	c = setup(t, reply(`<RESPONSE><STATUS>Failure</STATUS><ERRORCODE>E110</ERRORCODE></RESPONSE>`))
	_, err = c.SendSavedMMS(context.Background(), testKey, request())
	if e, _ := apperr.As(err); e == nil || !Known(e) {
		t.Fatalf("E110 must be known, got %v", err)
	}
}

func TestSendSavedMMSDeadline(t *testing.T) {
	release := make(chan struct{})
	c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.SendSavedMMS(ctx, testKey, request())
	if apperr.CodeOf(err) != apperr.CodeTimeout || apperr.ClassOf(err) != apperr.Retry {
		t.Fatalf("SendSavedMMS past the deadline = %v, want TIMEOUT/retry", err)
	}
	// The call must give up before the caller's deadline, leaving the margin.
	if el := time.Since(start); el > 800*time.Millisecond-deadlineMargin/2 {
		t.Errorf("call took %v; want it to stop ~%v before the deadline", el, deadlineMargin)
	}
}

func TestSendSavedMMSClientTimeout(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc(prefix, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(release)
	c := New(srv.URL+prefix, WithTimeout(200*time.Millisecond))
	_, err := c.SendSavedMMS(context.Background(), testKey, request())
	if apperr.CodeOf(err) != apperr.CodeTimeout {
		t.Fatalf("SendSavedMMS = %v, want TIMEOUT", err)
	}
}

func TestSendSavedMMSConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := New("http://"+addr+prefix, WithTimeout(time.Second))
	_, err = c.SendSavedMMS(context.Background(), testKey, request())
	if apperr.CodeOf(err) != apperr.CodeNetwork || apperr.ClassOf(err) != apperr.Retry {
		t.Fatalf("SendSavedMMS = %v, want NETWORK/retry", err)
	}
}

// TestAPIKeyNeverLeaks sends the key back in every place a server could
// echo it and checks the error text.
func TestAPIKeyNeverLeaks(t *testing.T) {
	bodies := []string{
		`<RESPONSE><STATUS>Failure</STATUS><ERRORCODE>E108</ERRORCODE><ERRORINFO>XML Parse error: near <API_KEY>` + testKey + `</API_KEY></ERRORINFO></RESPONSE>`,
		`<RESPONSE><STATUS>` + testKey + `</STATUS></RESPONSE>`,
		`<html>` + testKey + `</html>`,
	}
	for i, b := range bodies {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			c := setup(t, reply(b))
			_, err := c.SendSavedMMS(context.Background(), testKey, request())
			if err == nil {
				t.Fatal("want an error")
			}
			if strings.Contains(err.Error(), testKey) || strings.Contains(fmt.Sprintf("%+v", err), testKey) {
				t.Errorf("error text holds the API key")
			}
		})
	}
}

func TestClientReusesConnections(t *testing.T) {
	var conns atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc(prefix, reply(`<RESPONSE><STATUS>Success</STATUS><TRACKINGID>T</TRACKINGID></RESPONSE>`))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := New(srv.URL + prefix)
	for range 5 {
		if _, err := c.SendSavedMMS(context.Background(), testKey, request()); err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("5 sequential calls opened %d connections, want 1", n)
	}
}

func TestClassificationTable(t *testing.T) {
	// Every code of the vendor page and of docs/vendor.md, with its class.
	want := map[apperr.Code]apperr.Class{
		"E100": apperr.Config, "E101": apperr.Config, "E102": apperr.Config, "E103": apperr.Config, "E104": apperr.Config,
		"E105": apperr.Config, "E106": apperr.Retry, "E107": apperr.Config, "E108": apperr.Permanent, "E109": apperr.Config,
		"E110": apperr.Permanent, "E111": apperr.Permanent, "E112": apperr.Config, "E113": apperr.Retry, "E114": apperr.Permanent,
		"E115": apperr.Permanent, "E120": apperr.Retry, "E241": apperr.Permanent, "E503": apperr.Retry, "E618": apperr.Retry,
		"E619": apperr.Permanent, "E620": apperr.Permanent, "E621": apperr.Permanent, "E622": apperr.Permanent,
		"E623": apperr.Permanent, "E625": apperr.Permanent, "E626": apperr.Retry, "E627": apperr.Config,
		"E628": apperr.Permanent, "E629": apperr.Permanent, "E650": apperr.Config, "E651": apperr.Permanent,
		"E652": apperr.Permanent, "E655": apperr.Permanent, "E713": apperr.Config, "E714": apperr.Config,
		"E715": apperr.Permanent, "E718": apperr.Permanent, "E721": apperr.Permanent, "E803": apperr.Permanent,
		"E1501": apperr.Permanent, "E1502": apperr.Permanent, "E1506": apperr.Permanent, "E1507": apperr.Permanent,
		"E1508": apperr.Permanent, "E1511": apperr.Permanent, "E1515": apperr.Permanent, "E1516": apperr.Permanent,
	}
	for code, class := range want {
		t.Run(string(code), func(t *testing.T) {
			c := setup(t, reply(`<RESPONSE><STATUS>Failure</STATUS><ERRORCODE>`+string(code)+`</ERRORCODE><ERRORINFO>x</ERRORINFO></RESPONSE>`))
			_, err := c.SendSavedMMS(context.Background(), testKey, request())
			if got := apperr.ClassOf(err); got != class || apperr.CodeOf(err) != code {
				t.Errorf("%s classified as %s/%s, want %s", code, apperr.CodeOf(err), got, class)
			}
		})
	}
	if n := len(Codes()); n != len(want) {
		t.Errorf("table has %d codes, test covers %d", n, len(want))
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    *Response
		wantErr bool
	}{
		{"failure with TO", `<RESPONSE><STATUS>Failure</STATUS><ERRORCODE>E713</ERRORCODE><TO>1</TO><ERRORINFO> billing</ERRORINFO></RESPONSE>`,
			&Response{Status: "Failure", ErrorCode: "E713", To: "1", ErrorInfo: "billing"}, false},
		{"single-quoted declaration", `<?xml version='1.0'?><RESPONSE><STATUS>Success</STATUS><TRACKINGID>x</TRACKINGID></RESPONSE>`,
			&Response{Status: "Success", TrackingID: "x"}, false},
		{"ISO-8859-1", "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><RESPONSE><STATUS>Failure</STATUS><ERRORINFO>caf\xe9</ERRORINFO></RESPONSE>",
			&Response{Status: "Failure", ErrorInfo: "café"}, false},
		{"entities", `<RESPONSE><STATUS>Failure</STATUS><ERRORINFO>a &amp; b &lt;c&gt;</ERRORINFO></RESPONSE>`,
			&Response{Status: "Failure", ErrorInfo: "a & b <c>"}, false},
		{"CDATA", `<RESPONSE><STATUS><![CDATA[Success]]></STATUS><TRACKINGID>t</TRACKINGID></RESPONSE>`,
			&Response{Status: "Success", TrackingID: "t"}, false},
		{"other root", `<REQUEST><STATUS>Success</STATUS></REQUEST>`, nil, true},
		{"no STATUS", `<RESPONSE><TRACKINGID>t</TRACKINGID></RESPONSE>`, nil, true},
		{"unknown charset", `<?xml version="1.0" encoding="EBCDIC"?><RESPONSE><STATUS>x</STATUS></RESPONSE>`, nil, true},
		{"undefined entity", `<RESPONSE><STATUS>&lol;</STATUS></RESPONSE>`, nil, true},
		{"junk", "\x00\x01", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseResponse([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseResponse(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if got != nil {
				got.XMLName.Local = ""
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseResponse(%q) (-want +got):\n%s", tt.in, diff)
			}
			if err != nil && !errors.Is(err, ErrNotResponse) {
				t.Errorf("error %v is not ErrNotResponse", err)
			}
		})
	}
}
