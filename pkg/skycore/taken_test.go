package skycore

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// TestAnswersThatSayTaken: an answer that says Success or carries a
// tracking id is accepted (Success and nothing else) or in doubt
// (AMBIGUOUS, MaybeSent), never a plain failure or a rejection; the event
// text holds none of the answer, and no form of the key reaches the error.
func TestAnswersThatSayTaken(t *testing.T) {
	const trk = "a1b2c3d4-0000-4000-8000-123456789abc"
	tests := []struct {
		name, body string
		status     int
		want       apperr.Code // "" = accepted
	}{
		{"plain Success", `<RESPONSE><STATUS>Success</STATUS><TRACKINGID>` + trk + `</TRACKINGID></RESPONSE>`, 200, ""},
		{"Success twice", `<RESPONSE><STATUS>Success</STATUS><STATUS>Success</STATUS><TRACKINGID>` + trk + `</TRACKINGID></RESPONSE>`, 200, ""},
		{"Success with an E-code", `<RESPONSE><STATUS>Success</STATUS><TRACKINGID>` + trk + `</TRACKINGID><ERRORCODE>E110</ERRORCODE><ERRORINFO>Invalid receiver number.</ERRORINFO></RESPONSE>`, 200, apperr.CodeAmbiguous},
		{"Failure with a tracking id", `<RESPONSE><STATUS>Failure</STATUS><TRACKINGID>` + trk + `</TRACKINGID><ERRORCODE>E110</ERRORCODE></RESPONSE>`, 200, apperr.CodeAmbiguous},
		{"Success then Failure", `<RESPONSE><STATUS>Success</STATUS><TRACKINGID>` + trk + `</TRACKINGID><STATUS>Failure</STATUS></RESPONSE>`, 200, apperr.CodeAmbiguous},
		{"Failure then Success", `<RESPONSE><STATUS>Failure</STATUS><STATUS>Success</STATUS></RESPONSE>`, 200, apperr.CodeAmbiguous},
		{"Success, E-code emptied by a second", `<RESPONSE><STATUS>Success</STATUS><ERRORCODE>E110</ERRORCODE><ERRORCODE></ERRORCODE></RESPONSE>`, 200, apperr.CodeAmbiguous},
		{"two tracking ids", `<RESPONSE><STATUS>Success</STATUS><TRACKINGID>a</TRACKINGID><TRACKINGID>b</TRACKINGID></RESPONSE>`, 200, apperr.CodeAmbiguous},
		{"nested Failure beside Success", `<RESPONSE><STATUS>Success</STATUS><RESULT><STATUS>Failure</STATUS></RESULT></RESPONSE>`, 200, apperr.CodeAmbiguous},
		{"unexpected root with a tracking id", `<SKYCORE><STATUS>Failure</STATUS><TRACKINGID>` + trk + `</TRACKINGID></SKYCORE>`, 200, apperr.CodeAmbiguous},
		{"RESPONSE wrapped", `<ENVELOPE><RESPONSE><STATUS>Success</STATUS><TRACKINGID>` + trk + `</TRACKINGID></RESPONSE></ENVELOPE>`, 200, apperr.CodeAmbiguous},
		{"HTML 502 with a tracking id", `<html><body><TRACKINGID>` + trk + `</TRACKINGID></body></html>`, 502, apperr.CodeAmbiguous},
		{"Success over the size cap", `<RESPONSE><STATUS>Success</STATUS><TRACKINGID>` + trk + `</TRACKINGID><STATUSDETAILS>` + strings.Repeat("x", MaxResponse) + `</STATUSDETAILS></RESPONSE>`, 200, apperr.CodeAmbiguous},
		{"tracking id over the size cap", `<RESPONSE><STATUS>Failure</STATUS><TRACKINGID>` + strings.Repeat("T", MaxResponse) + `</TRACKINGID></RESPONSE>`, 200, apperr.CodeAmbiguous},
		// Not taken: as before.
		{"plain Failure", `<RESPONSE><STATUS>Failure</STATUS><ERRORCODE>E110</ERRORCODE></RESPONSE>`, 200, "E110"},
		{"Failure twice", `<RESPONSE><STATUS>Failure</STATUS><STATUS>Failure</STATUS><ERRORCODE>E110</ERRORCODE></RESPONSE>`, 200, "E110"},
		{"the word in ERRORINFO", `<RESPONSE><STATUS>Failure</STATUS><ERRORCODE>E110</ERRORCODE><ERRORINFO>not Success</ERRORINFO></RESPONSE>`, 200, "E110"},
		{"cut Succ", `<RESPONSE><STATUS>Succ`, 200, "HTTP_200"},
		{"Failure over the size cap", `<RESPONSE><STATUS>Failure</STATUS><STATUSDETAILS>` + strings.Repeat("x", MaxResponse) + `</STATUSDETAILS></RESPONSE>`, 200, "HTTP_200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := setup(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				w.Write([]byte(strings.ReplaceAll(tt.body, "Invalid receiver", "key "+testKey)))
			})
			resp, err := c.SendSavedMMS(context.Background(), testKey, request())
			if tt.want == "" {
				if err != nil || resp == nil {
					t.Fatalf("SendSavedMMS = %v, %v; want accepted", resp, err)
				}
				return
			}
			e, ok := apperr.As(err)
			if !ok {
				t.Fatalf("SendSavedMMS = %+v, %v; want %s", resp, err, tt.want)
			}
			if e.Code != tt.want {
				t.Fatalf("code = %s, want %s (%v)", e.Code, tt.want, e)
			}
			if tt.want != apperr.CodeAmbiguous {
				return
			}
			if e.Class == apperr.Permanent || !MaybeSent(e) {
				t.Errorf("class %s, MaybeSent %v: want in doubt", e.Class, MaybeSent(e))
			}
			if strings.Contains(e.Message, trk) || strings.Contains(e.Message, "E110") {
				t.Errorf("Message (event text) holds the answer: %q", e.Message)
			}
			if strings.Contains(err.Error(), testKey) || len(err.Error()) > 2000 {
				t.Errorf("error leaks the key or the whole answer: %.300s", err)
			}
		})
	}
}

// FuzzScanAnswer: the lenient reading never panics, stays bounded, and
// agrees with the strict parser on every STATUS a plain RESPONSE holds.
func FuzzScanAnswer(f *testing.F) {
	f.Add([]byte(`<RESPONSE><STATUS>Success</STATUS><TRACKINGID>T</TRACKINGID><ERRORCODE>E110</ERRORCODE></RESPONSE>`))
	f.Add([]byte(`<X><STATUS>Failure</STATUS><Y><STATUS>Success</STATUS></Y></X>`))
	f.Add([]byte(`<html><body><TRACKINGID>T`))
	f.Add([]byte("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><RESPONSE><STATUS>\xe9</STATUS></RESPONSE>"))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev := ScanAnswer(body)
		if len(ev.Statuses) > maxEvidence || len(ev.ErrorCodes) > maxEvidence || len(ev.TrackingIDs) > maxEvidence {
			t.Fatalf("unbounded evidence: %+v", ev)
		}
		r, err := ParseResponse(body)
		if err != nil || repeats(body) {
			return
		}
		if strings.EqualFold(r.Status, StatusSuccess) && !ev.SaysSuccess() {
			t.Fatalf("parsed Success, the scan missed it: %q", body)
		}
		if r.TrackingID != "" && len(ev.TrackingIDs) == 0 {
			t.Fatalf("parsed a tracking id, the scan missed it: %q", body)
		}
	})
}
