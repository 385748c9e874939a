package skycore

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// TestKeyNeverLeaks feeds error pages that echo the API key at every
// offset, with and without a prefix, and checks that no part of the key
// (8 characters or more of it) reaches the error's message or its logged
// text. The old code cut at 120 bytes before redacting.
func TestKeyNeverLeaks(t *testing.T) {
	const key = "k3y-0123456789abcdefghijKLMNOPQRS" // 32 characters
	for _, prefix := range []string{"", "Bad request: ", "<html><body>"} {
		for off := 0; off < 160; off++ {
			page := prefix + strings.Repeat("x", off) + key + " tail"
			for _, raw := range []string{page, "<RESPONSE><STATUS>Failure</STATUS><ERRORCODE>E110</ERRORCODE><ERRORINFO>" + page + "</ERRORINFO></RESPONSE>"} {
				c := setup(t, reply(raw))
				_, err := c.SendSavedMMS(context.Background(), key, request())
				e, ok := apperr.As(err)
				if !ok {
					t.Fatalf("offset %d: %v", off, err)
				}
				for _, s := range []string{e.Message, err.Error()} {
					for n := 8; n <= len(key); n++ {
						for i := 0; i+n <= len(key); i++ {
							if strings.Contains(s, key[i:i+n]) {
								t.Fatalf("offset %d, prefix %q: %d characters of the key leak in %q", off, prefix, n, s)
							}
						}
					}
				}
			}
		}
	}
}

// TestEventsCarryNoVendorBody: an error page's text is logged (redacted),
// never put into the message that reaches the application's events.
func TestEventsCarryNoVendorBody(t *testing.T) {
	c := setup(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		w.Write([]byte("<html>upstream secret-ish page</html>"))
	})
	_, err := c.SendSavedMMS(context.Background(), testKey, request())
	e, _ := apperr.As(err)
	if e == nil || strings.Contains(e.Message, "upstream") || !strings.Contains(err.Error(), "upstream") {
		t.Errorf("error = %+v; want the body in the cause only", e)
	}
}

func TestSuccessWithoutTrackingID(t *testing.T) {
	c := setup(t, reply(`<RESPONSE><STATUS>Success</STATUS><MMSID>1</MMSID></RESPONSE>`))
	resp, err := c.SendSavedMMS(context.Background(), testKey, request())
	if err != nil || resp.TrackingID != "" || resp.Status != StatusSuccess {
		t.Errorf("SendSavedMMS = %+v, %v; want Success without a tracking id, no error", resp, err)
	}
}

func TestMaybeSent(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	read := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	tests := map[string]struct {
		e    *apperr.Error
		want bool
	}{
		"timeout after the request was written": {&apperr.Error{Op: opSend, Code: apperr.CodeTimeout}, true},
		"reset while reading the answer":        {&apperr.Error{Op: opSend, Code: apperr.CodeNetwork, Err: read}, true},
		"refused connection":                    {&apperr.Error{Op: opSend, Code: apperr.CodeNetwork, Err: dial}, false},
		"dial timeout":                          {&apperr.Error{Op: opSend, Code: apperr.CodeTimeout, Err: dial}, false},
		"an answer, even a 500":                 {&apperr.Error{Op: opSend, Code: apperr.HTTPCode(500)}, false},
		"a vendor code":                         {&apperr.Error{Op: opSend, Code: "E503"}, false},
		"not a call (rate limiter)":             {&apperr.Error{Op: "sender.rate", Code: apperr.CodeTimeout}, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := MaybeSent(tt.e); got != tt.want {
				t.Errorf("MaybeSent(%v) = %v, want %v", tt.e, got, tt.want)
			}
		})
	}
}
