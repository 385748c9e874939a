package skycore

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/pkg/sendreq"
)

// TestRemovedRulesEncode: each request an old local rule refused, which the
// vendor page does not, is valid now and goes out as Skycore expects it
// (TO and vCard numbers as digits, the rest as written). docs/codes.md
// lists the removed rules.
func TestRemovedRulesEncode(t *testing.T) {
	type sent struct {
		To       string   `xml:"TO"`
		Fallback string   `xml:"FALLBACKSMSTEXT"`
		Photo    string   `xml:"DYNAMICVCARD>PHOTOURL"`
		Numbers  []string `xml:"DYNAMICVCARD>PHONE>NUMBER"`
		Note     string   `xml:"DYNAMICVCARD>NOTE"`
		Mask     string   `xml:"FROM_MASK"`
		DataNote string   `xml:"DATA>NOTE"`
		DataK99  string   `xml:"DATA>K99"`
		Campaign string   `xml:"CAMPAIGNREF"`
		Operator string   `xml:"OPERATORID"`
	}
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	tests := []struct {
		name string
		edit func(r *sendreq.Request)
		want sent
	}{
		{"to with + and separators (was E110)", func(r *sendreq.Request) { r.To = "+1 (774) 319-9144" }, sent{To: "17743199144"}},
		{"to of 7 digits (was E110)", func(r *sendreq.Request) { r.To = "+683 4002" }, sent{To: "6834002"}},
		{"fallback of 200 characters (was E100 over 160)", func(r *sendreq.Request) { r.Fallback = &sendreq.Fallback{Text: long("f", 200)} },
			sent{To: "17743199144", Fallback: long("f", 200)}},
		{"extensionless photo URL (was E1502)", func(r *sendreq.Request) {
			r.VCard = &sendreq.VCard{LastName: "A", PhotoURL: "https://cdn.example.com/i/8812?w=400"}
		}, sent{To: "17743199144", Photo: "https://cdn.example.com/i/8812?w=400"}},
		{"vcard phones as people write them (was E1506)", func(r *sendreq.Request) {
			r.VCard = &sendreq.VCard{LastName: "A", Phones: []sendreq.Phone{{Number: "+1 (800) 555-0100"}, {Number: "1.800.555.0199"}}}
		}, sent{To: "17743199144", Numbers: []string{"18005550100", "18005550199"}}},
		{"vcard note of 3000 characters (was E100 over 1000)", func(r *sendreq.Request) { r.VCard = &sendreq.VCard{LastName: "A", Note: long("n", 3000)} },
			sent{To: "17743199144", Note: long("n", 3000)}},
		{"data value of 2000 characters (was E100 over 1000)", func(r *sendreq.Request) { r.Data = map[string]string{"note": long("d", 2000)} },
			sent{To: "17743199144", DataNote: long("d", 2000)}},
		{"fromMask with a space (was E100)", func(r *sendreq.Request) { r.FromMask = "ACME Ltd" }, sent{To: "17743199144", Mask: "ACME Ltd"}},
		{"100 data keys (was E100 over 64)", func(r *sendreq.Request) {
			r.Data = map[string]string{}
			for i := range 100 {
				r.Data[fmt.Sprint("k", i)] = fmt.Sprint(i)
			}
		}, sent{To: "17743199144", DataK99: "99"}},
		{"campaignRef of 2000 characters (was E100 over 1000)", func(r *sendreq.Request) { r.CampaignRef = long("c", 2000) },
			sent{To: "17743199144", Campaign: long("c", 2000)}},
		{"operatorId of 20 digits (was E100 over 16)", func(r *sendreq.Request) { r.OperatorID = long("1", 20) },
			sent{To: "17743199144", Operator: long("1", 20)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &sendreq.Request{ID: "removed-1", To: "17743199144", MMSID: "48211"}
			tt.edit(r)
			r.ApplyDefaults(policy)
			if err := r.Validate(policy); err != nil {
				t.Fatalf("Validate = %v, want valid", err)
			}
			var buf bytes.Buffer
			AppendRequest(&buf, testKey, r)
			var got sent
			if err := xml.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("sent (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEncodeDigitsWithoutDefaults: even a caller that skips ApplyDefaults
// cannot send a TO or vCard number with punctuation; what is not a
// well-written number is left as it is (Validate refuses it first).
func TestEncodeDigitsWithoutDefaults(t *testing.T) {
	r := &sendreq.Request{ID: "x", To: "+1 (774) 319-9144", From: "60856", MMSID: "1",
		VCard: &sendreq.VCard{LastName: "A", Phones: []sendreq.Phone{{Number: "+44 20 7946 0958"}, {Number: "1-800-FLOWERS"}}}}
	var buf bytes.Buffer
	AppendRequest(&buf, testKey, r)
	for _, want := range []string{"<TO>17743199144</TO>", "<NUMBER>442079460958</NUMBER>", "<NUMBER>1-800-FLOWERS</NUMBER>"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("encoded request lacks %s:\n%s", want, buf.String())
		}
	}
}
