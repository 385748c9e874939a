package postback

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

// FuzzBody: reading a body never panics, never returns more than MaxBody
// bytes, and a body that starts with '<' after whitespace and a BOM is
// returned as the XML it is, whatever the Content-Type.
func FuzzBody(f *testing.F) {
	for _, seed := range []struct {
		body, ct string
		b64      bool
	}{
		{"<POSTBACK/>", "application/x-www-form-urlencoded", false},
		{"\ufeff \n<POSTBACK/>", "", false},
		{"xml=%3CPOSTBACK%2F%3E", "application/x-www-form-urlencoded", false},
		{"xml=<POSTBACK/>", "text/plain", false},
		{base64.StdEncoding.EncodeToString([]byte("<POSTBACK/>")), "", true},
		{"%%%", "", true},
		{"a=b", "application/x-www-form-urlencoded; charset=UTF-8", false},
	} {
		f.Add(seed.body, seed.ct, seed.b64)
	}
	h := NewHandler(Deps{})
	f.Fuzz(func(t *testing.T, body, ct string, b64 bool) {
		req := events.APIGatewayV2HTTPRequest{Body: body, IsBase64Encoded: b64, Headers: map[string]string{"Content-Type": ct}}
		doc, err := h.body(req)
		if err != nil {
			return
		}
		if len(doc) > MaxBody {
			t.Fatalf("body() returned %d bytes", len(doc))
		}
		raw := []byte(body)
		if b64 {
			raw, _ = base64.StdEncoding.DecodeString(body)
		}
		if t := trimXMLStart(raw); len(t) > 0 && t[0] == '<' && !bytes.Equal(doc, t) {
			panic("an XML body was not returned as it is")
		}
	})
}
