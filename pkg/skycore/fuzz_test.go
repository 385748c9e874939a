package skycore

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParseResponse: no panic, and a parsed response re-encodes to a
// document that parses to the same response.
func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(`<RESPONSE><STATUS>Success</STATUS><MMSID>1</MMSID><TRACKINGID>T</TRACKINGID><TO>1</TO><FROM>2</FROM><STATUSDETAILS>ok</STATUSDETAILS></RESPONSE>`))
	f.Add([]byte(`<RESPONSE><STATUS>Failure</STATUS><ERRORCODE>E106</ERRORCODE><ERRORINFO>You can call API every 3 seconds</ERRORINFO></RESPONSE>`))
	f.Add([]byte("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><RESPONSE><STATUS>\xe9</STATUS></RESPONSE>"))
	f.Add([]byte(`<html><body>502</body></html>`))
	f.Add([]byte(`<?xml version="1.0" encoding="UTF-8"?> <RESPONSE> <STATUS>Failure</STATUS><ERRORINFO>a &amp; &#233; &#x41;</ERRORINFO><X/></RESPONSE>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		// The fast path must agree with encoding/xml wherever it answers.
		if fast, ok := parseFast(body); ok && fast.Status != "" {
			slow, err := parseXML(body)
			if err != nil {
				t.Fatalf("fast path accepted what encoding/xml rejects (%v): %q", err, body)
			}
			if diff := cmp.Diff(slow, fast); diff != "" {
				t.Fatalf("fast and encoding/xml paths differ (-xml +fast) on %q:\n%s", body, diff)
			}
		}
		r, err := ParseResponse(body)
		if err != nil {
			return
		}
		r2, err := ParseResponse(r.Marshal())
		if err != nil {
			t.Fatalf("re-encoded response does not parse: %v\n%s", err, r.Marshal())
		}
		if diff := cmp.Diff(r, r2); diff != "" {
			t.Fatalf("round trip changed the response (-first +second):\n%s", diff)
		}
	})
}
