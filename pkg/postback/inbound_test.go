package postback

import (
	"encoding/base64"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/pkg/skycore"
)

// TestInboundThroughBody: both inbound (MO) shapes, UTF-8 and ISO-8859-1,
// come out of the body decoder (raw, form field, base64 of either) as the
// document skycore.ParseInbound reads, whatever the Content-Type says.
func TestInboundThroughBody(t *testing.T) {
	h := NewHandler(Deps{})
	for _, name := range []string{"sms-mo.xml", "mms-mo.xml", "sms-mo-iso-8859-1.xml"} {
		doc, err := os.ReadFile("../skycore/testdata/inbound/" + name)
		if err != nil {
			t.Fatal(err)
		}
		want, err := skycore.ParseInbound(doc)
		if err != nil {
			t.Fatal(err)
		}
		form := "xml=" + url.QueryEscape(string(doc))
		b64 := base64.StdEncoding.EncodeToString
		for _, c := range []struct {
			how, body, ct string
			isB64         bool
		}{
			{"raw text/xml", string(doc), "text/xml", false},
			{"raw, no Content-Type", string(doc), "", false},
			{"raw, said to be a form", string(doc), "application/x-www-form-urlencoded", false},
			{"form", form, "application/x-www-form-urlencoded; charset=UTF-8", false},
			{"form, no Content-Type", form, "", false},
			{"base64 raw", b64(doc), "application/xml", true},
			{"base64 form", b64([]byte(form)), "application/x-www-form-urlencoded", true},
		} {
			t.Run(name+"/"+c.how, func(t *testing.T) {
				body, err := h.body(events.APIGatewayV2HTTPRequest{Body: c.body, IsBase64Encoded: c.isB64, Headers: map[string]string{"content-type": c.ct}})
				if err != nil {
					t.Fatal(err)
				}
				got, err := skycore.ParseInbound(body)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
				// The delivery parser would see an unknown code: the
				// handler must ask ParseInbound first.
				if ns, err := Parse(body); err == nil && len(ns) == 1 {
					if _, _, ok := Classify(ns[0].Code); ok {
						t.Errorf("delivery path classifies %s", ns[0].Code)
					}
				}
			})
		}
	}
	// No delivery postback of the corpus is taken for an inbound message.
	files, err := filepath.Glob("testdata/*.xml")
	if err != nil || len(files) == 0 {
		t.Fatal(files, err)
	}
	for _, f := range files {
		doc, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if skycore.IsInbound(doc) {
			t.Errorf("%s is taken for an inbound message", f)
		}
	}
}
