package skycore

import (
	"bytes"
	"os"
	"testing"

	"github.com/mmsgate/mmsgate/pkg/sendreq"
)

// BenchmarkPerMessage is the CPU mmsgate spends on one message outside the
// network: decode, validate, encode and parse Skycore's answer.
func BenchmarkPerMessage(b *testing.B) {
	body, err := os.ReadFile("testdata/contract-example.json")
	if err != nil {
		b.Fatal(err)
	}
	answer := []byte(`<RESPONSE><STATUS>Success</STATUS><MMSID>48211</MMSID><TRACKINGID>DrXAFP-Ylpc-JZL</TRACKINGID><TO>17743199144</TO><FROM>60856</FROM><STATUSDETAILS>MMS request accepted and queued for delivery</STATUSDETAILS></RESPONSE>`)
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		r, err := sendreq.Decode(body)
		if err != nil {
			b.Fatal(err)
		}
		r.ApplyDefaults(policy)
		if err := r.Validate(policy); err != nil {
			b.Fatal(err)
		}
		buf.Reset()
		AppendRequest(&buf, testKey, r)
		if _, err := ParseResponse(answer); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateEncodeParse leaves out JSON decoding (done once per
// SQS record anyway) to show the part this package owns.
func BenchmarkValidateEncodeParse(b *testing.B) {
	body, _ := os.ReadFile("testdata/contract-example.json")
	r, err := sendreq.Decode(body)
	if err != nil {
		b.Fatal(err)
	}
	answer := []byte(`<RESPONSE><STATUS>Success</STATUS><MMSID>48211</MMSID><TRACKINGID>DrXAFP-Ylpc-JZL</TRACKINGID><TO>17743199144</TO><FROM>60856</FROM><STATUSDETAILS>MMS request accepted and queued for delivery</STATUSDETAILS></RESPONSE>`)
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Validate(policy); err != nil {
			b.Fatal(err)
		}
		buf.Reset()
		AppendRequest(&buf, testKey, r)
		if _, err := ParseResponse(answer); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseResponse sets the fast path beside encoding/xml on the
// answer every accepted send gets: BENCHMARKS.md keeps parseFast only while
// this shows it paying for its lines.
func BenchmarkParseResponse(b *testing.B) {
	answer := []byte(`<RESPONSE><STATUS>Success</STATUS><MMSID>48211</MMSID><TRACKINGID>DrXAFP-Ylpc-JZL</TRACKINGID><TO>17743199144</TO><FROM>60856</FROM><STATUSDETAILS>MMS request accepted and queued for delivery</STATUSDETAILS></RESPONSE>`)
	for _, c := range []struct {
		name  string
		parse func([]byte) (*Response, error)
	}{{"fast", ParseResponse}, {"xml", parseXML}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r, err := c.parse(answer); err != nil || r.TrackingID != "DrXAFP-Ylpc-JZL" {
					b.Fatal(r, err)
				}
			}
		})
	}
}
