package sendreq

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestSourcedRules: one row per local rejection rule, with the source
// docs/codes.md gives for it ("vendor" = the vendor's send-saved-mms-v1
// page; [L] [C] [D] = older Skycore documents with their confidence tag;
// "medium" = what XML or SMS itself imposes; "mmsgate" = a key or field of
// mmsgate's own, never sent to Skycore).
func TestSourcedRules(t *testing.T) {
	tests := []struct {
		rule, source string
		edit         func(r *Request)
		want         []violation
	}{
		{"to missing", "vendor: TO Mandatory; E621", func(r *Request) { r.To = "" }, []violation{{"E621", "to"}}},
		{"to blank", "vendor: TO Mandatory; E621", func(r *Request) { r.To = "  " }, []violation{{"E621", "to"}}},
		{"to with a letter", "vendor: TO in international format; E110; [C] digits only", func(r *Request) { r.To = "1774319914O" }, []violation{{"E110", "to"}}},
		{"to with a + inside", "vendor: E110; [C] no + beyond the leading one", func(r *Request) { r.To = "1+7743199144" }, []violation{{"E110", "to"}}},
		{"to of 6 digits", "vendor: E110; E.164 (the medium)", func(r *Request) { r.To = "+44 1234" }, []violation{{"E110", "to"}}},
		{"to of 16 digits", "vendor: E110; E.164: at most 15 digits", func(r *Request) { r.To = "+1 774 319 9144 12345" }, []violation{{"E110", "to"}}},
		{"from not digits", "vendor: FROM a shortcode or longcode; E111", func(r *Request) { r.From = "ACME" }, []violation{{"E111", "from"}}},
		{"mmsId not a bigint", "vendor: MMSID the ID (bigint); E620", func(r *Request) { r.MMSID = "x" }, []violation{{"E620", "mmsId"}}},
		{"operatorId letters", "vendor: OPERATORID carrier ID; [L][P] digits (0001470)", func(r *Request) { r.OperatorID = "ATT" }, []violation{{"E100", "operatorId"}}},
		{"fromMask 12 characters", "medium: an alphanumeric sender is at most 11 characters; [C S6]", func(r *Request) { r.FromMask = "ABCDEFGHIJKL" }, []violation{{"E100", "fromMask"}}},
		{"fromMask all digits", "medium: all digits is a numeric sender, not a mask", func(r *Request) { r.FromMask = "60856" }, []violation{{"E100", "fromMask"}}},
		{"subject 81 characters", "[L] Skycore 1.3 saveMMS rules: subject up to 80", func(r *Request) { r.Subject = strings.Repeat("s", 81) }, []violation{{"E100", "subject"}}},
		{"slide 9", "[L] Skycore 1.3 saveMMS rules: at most 8 slides", func(r *Request) { r.Slides = []Slide{{9, "a"}} }, []violation{{"E100", "slides[0].slide"}}},
		{"slide text blank", "vendor: CUSTOMTEXT must include value and slide", func(r *Request) { r.Slides = []Slide{{1, " \r\n\t"}} }, []violation{{"E100", "slides[0].text"}}},
		{"slide text 5001", "[L] Skycore 1.3 saveMMS rules: slide text up to 5000", func(r *Request) { r.Slides = []Slide{{1, strings.Repeat("t", 5001)}} }, []violation{{"E100", "slides[0].text"}}},
		{"data key not an XML name", "medium: the key becomes a DATA element's name", func(r *Request) { r.Data = map[string]string{"first name": "x"} }, []violation{{"E100", "data.first name"}}},
		{"barcodeid blank", "vendor: E803 'barcodevalue' is required", func(r *Request) { r.Data = map[string]string{"barcodeid": ""} }, []violation{{"E803", "data.barcodeid"}}},
		{"vcard empty", "vendor: E1501", func(r *Request) { r.VCard = &VCard{} }, []violation{{"E1501", "vcard"}}},
		{"vcard name with a hyphen", "vendor: names only alphanumeric, space, period; E1515", func(r *Request) { r.VCard = &VCard{LastName: "Smith-Jones"} }, []violation{{"E1515", "vcard.lastName"}}},
		{"vcard phone blank", "vendor: E1507", func(r *Request) { r.VCard = &VCard{LastName: "A", Phones: []Phone{{Number: "  "}}} }, []violation{{"E1507", "vcard.phones[0].number"}}},
		{"vcard phone letters", "vendor: E1506; sent as digits", func(r *Request) { r.VCard = &VCard{LastName: "A", Phones: []Phone{{Number: "1-800-FLOWERS"}}} }, []violation{{"E1506", "vcard.phones[0].number"}}},
		{"vcard phone no digits", "vendor: E1506", func(r *Request) { r.VCard = &VCard{LastName: "A", Phones: []Phone{{Number: "( )"}}} }, []violation{{"E1506", "vcard.phones[0].number"}}},
		{"vcard phone 21 digits", "vendor: E1506; mmsgate: at most 20 digits", func(r *Request) {
			r.VCard = &VCard{LastName: "A", Phones: []Phone{{Number: "+1 800 555 0100 123456789 0"}}}
		}, []violation{{"E1506", "vcard.phones[0].number"}}},
		{"vcard phone label fax", "vendor: labels work and home; E1516", func(r *Request) { r.VCard = &VCard{LastName: "A", Phones: []Phone{{Number: "1", Label: "fax"}}} }, []violation{{"E1516", "vcard.phones[0].label"}}},
		{"vcard photo relative", "vendor: PHOTOURL a URL; E1502", func(r *Request) { r.VCard = &VCard{LastName: "A", PhotoURL: "/a.png"} }, []violation{{"E1502", "vcard.photoUrl"}}},
		{"vcard photo data URL", "vendor: PHOTOURL a URL Skycore fetches; E1502", func(r *Request) { r.VCard = &VCard{LastName: "A", PhotoURL: "data:image/png;base64,AAAA"} }, []violation{{"E1502", "vcard.photoUrl"}}},
		{"XML-illegal character", "medium: XML 1.0 Char; E108", func(r *Request) { r.Fallback = &Fallback{Text: "a\x00"} }, []violation{{"E108", "fallback.text"}}},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			r := base()
			tt.edit(r)
			r.ApplyDefaults(Policy{})
			if diff := cmp.Diff(tt.want, violations(r.Validate(Policy{}))); diff != "" {
				t.Errorf("%s (source: %s): violations (-want +got):\n%s", tt.rule, tt.source, diff)
			}
		})
	}
}

// TestRemovedRules: what the old rules refused and Skycore takes now goes
// out, with `to` and vCard numbers as digits. (pkg/skycore's
// TestRemovedRulesEncode shows the XML.)
func TestRemovedRules(t *testing.T) {
	tests := []struct {
		name string
		edit func(r *Request)
		want func(r *Request) // what ApplyDefaults leaves
	}{
		{"to as people write it", func(r *Request) { r.To = "+1 (774) 319-9144" }, func(r *Request) { r.To = "17743199144" }},
		{"to with dots", func(r *Request) { r.To = "1.774.319.9144" }, func(r *Request) { r.To = "17743199144" }},
		{"to of 7 digits", func(r *Request) { r.To = "+683 4002" }, func(r *Request) { r.To = "6834002" }},
		{"fallback of 200 characters", func(r *Request) { r.Fallback = &Fallback{Text: strings.Repeat("f", 200)} }, nil},
		{"fallback of 2000 characters", func(r *Request) { r.Fallback = &Fallback{Text: strings.Repeat("f", 2000)} }, nil},
		{"photo without extension", func(r *Request) { r.VCard = &VCard{LastName: "A", PhotoURL: "https://cdn.example.com/i/8812?w=400"} }, nil},
		{"photo .webp", func(r *Request) { r.VCard = &VCard{LastName: "A", PhotoURL: "HTTPS://cdn.example.com/a.webp"} }, nil},
		{"vcard phone as people write it", func(r *Request) { r.VCard = &VCard{LastName: "A", Phones: []Phone{{Number: "+1 (800) 555-0100"}}} },
			func(r *Request) { r.VCard.Phones[0].Number = "18005550100" }},
		{"vcard phone with an extension", func(r *Request) { r.VCard = &VCard{LastName: "A", Phones: []Phone{{Number: "1 800 555 0100 12345"}}} },
			func(r *Request) { r.VCard.Phones[0].Number = "1800555010012345" }},
		{"data value of 5000 characters", func(r *Request) { r.Data = map[string]string{"note": strings.Repeat("d", 5000)} }, nil},
		{"100 data keys", func(r *Request) {
			r.Data = map[string]string{}
			for i := range 100 {
				r.Data["k"+strconv.Itoa(i)] = "v"
			}
		}, nil},
		{"vcard note of 3000 characters", func(r *Request) { r.VCard = &VCard{LastName: "A", Note: strings.Repeat("n", 3000)} }, nil},
		{"campaignRef of 2000 characters", func(r *Request) { r.CampaignRef = strings.Repeat("c", 2000) }, nil},
		{"operatorId of 20 digits", func(r *Request) { r.OperatorID = strings.Repeat("1", 20) }, nil},
		{"fromMask with a space", func(r *Request) { r.FromMask = "ACME Ltd" }, nil},
		{"fromMask with an ampersand", func(r *Request) { r.FromMask = "A&B" }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, want := base(), base()
			tt.edit(r)
			tt.edit(want)
			if tt.want != nil {
				tt.want(want)
			}
			r.ApplyDefaults(Policy{})
			if err := r.Validate(Policy{}); err != nil {
				t.Fatalf("Validate = %v, want valid", err)
			}
			if diff := cmp.Diff(want, r); diff != "" {
				t.Errorf("after ApplyDefaults (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPhoneDigits(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"17743199144", "17743199144", true},
		{"+1 (774) 319-9144", "17743199144", true},
		{" +44 20.7946.0958 ", "442079460958", true},
		{"(800) 555-0100", "8005550100", true},
		{"", "", true},
		{"+", "", true},
		{"++1", "", false},
		{"1+1", "", false},
		{"1 + 1", "", false},
		{"1-800-FLOWERS", "", false},
		{"1\t774", "", false}, // a tab is not one of the separators
		{"١٧٧٤", "", false},   // digits of other scripts are not sent
		{"17743199144x12", "", false},
	}
	for _, tt := range tests {
		got, ok := PhoneDigits(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("PhoneDigits(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	if n := testing.AllocsPerRun(100, func() { PhoneDigits("17743199144") }); n != 0 {
		t.Errorf("PhoneDigits of plain digits allocates %v times", n)
	}
}

// FuzzPhoneDigits: whatever is accepted is digits only, has the input's
// digits in order, and normalising twice changes nothing.
func FuzzPhoneDigits(f *testing.F) {
	for _, s := range []string{"+1 (774) 319-9144", "1-800-FLOWERS", "++1", "", "1.2.3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := PhoneDigits(s)
		if !ok {
			if d != "" {
				t.Fatalf("PhoneDigits(%q) = %q with ok false", s, d)
			}
			return
		}
		var want strings.Builder
		for i := 0; i < len(s); i++ {
			if s[i] >= '0' && s[i] <= '9' {
				want.WriteByte(s[i])
			}
		}
		if d != want.String() {
			t.Fatalf("PhoneDigits(%q) = %q, want %q", s, d, want.String())
		}
		if d2, ok2 := PhoneDigits(d); !ok2 || d2 != d {
			t.Fatalf("PhoneDigits(%q) = %q, %v; not stable", d, d2, ok2)
		}
	})
}

// TestWarnings: advice from the vendor page is a warning, never a rejection.
func TestWarnings(t *testing.T) {
	tests := []struct {
		name string
		edit func(r *Request)
		want []string
	}{
		{"none", func(r *Request) {}, nil},
		{"fallback of 110", func(r *Request) { r.Fallback = &Fallback{Text: strings.Repeat("a", 110)} }, nil},
		{"fallback of 111 (vendor: limit text to 110 characters)", func(r *Request) { r.Fallback = &Fallback{Text: strings.Repeat("a", 111)} },
			[]string{WarnFallbackLong}},
		{"fallback counts characters, not bytes", func(r *Request) { r.Fallback = &Fallback{Text: strings.Repeat("é", 110)} }, nil},
		{"fromMask to a US number (vendor: not supported in the USA)", func(r *Request) { r.FromMask = "ACME"; r.To = "+1 (774) 319-9144" },
			[]string{WarnFromMaskUS}},
		{"fromMask to a UK number", func(r *Request) { r.FromMask = "ACME"; r.To = "447700900123" }, nil},
		{"subject with a toll-free from (vendor: may not support a subject)", func(r *Request) { r.Subject = "Hi"; r.From = "18885550100" },
			[]string{WarnSubjectTollFree}},
		{"subject with a 10-digit toll-free from", func(r *Request) { r.Subject = "Hi"; r.From = "8335550100" }, []string{WarnSubjectTollFree}},
		{"subject with a short code", func(r *Request) { r.Subject = "Hi" }, nil},
		{"subject with an 899 number (not toll-free)", func(r *Request) { r.Subject = "Hi"; r.From = "18995550100" }, nil},
		{"toll-free from without subject", func(r *Request) { r.From = "18005550100" }, nil},
		{"all three, in a fixed order", func(r *Request) {
			r.Fallback = &Fallback{Text: strings.Repeat("a", 200)}
			r.FromMask, r.Subject, r.From = "ACME", "Hi", "18005550100"
		}, []string{WarnFallbackLong, WarnFromMaskUS, WarnSubjectTollFree}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base()
			tt.edit(r)
			r.ApplyDefaults(Policy{})
			if err := r.Validate(Policy{}); err != nil {
				t.Fatalf("a warning must not reject: %v", err)
			}
			got := r.Warnings()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Warnings (-want +got):\n%s", diff)
			}
			for _, w := range got {
				if WarningText(w) == "" {
					t.Errorf("warning %q has no text", w)
				}
			}
		})
	}
}

// TestExtras: metadata, sendAt, expiresAt and the cancel body (mmsgate's
// own fields, E100 with the field named).
func TestExtras(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	on := Policy{Scheduling: true, Now: func() time.Time { return now }}
	meta := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[strings.Repeat("k", i+1)] = "v"
		}
		return m
	}
	tests := []struct {
		name   string
		policy Policy
		body   string
		want   []violation
	}{
		{"metadata ok", on, `{"metadata":{"orderId":"8812","tenant:x.y-z_1":"acme"}}`, nil},
		{"metadata 16 values", on, `{"metadata":` + mustJSON(meta(16)) + `}`, nil},
		{"metadata 17 values", on, `{"metadata":` + mustJSON(meta(17)) + `}`, []violation{{"E100", "metadata"}}},
		{"metadata key with a space", on, `{"metadata":{"order id":"1"}}`, []violation{{"E100", "metadata.order id"}}},
		{"metadata empty key", on, `{"metadata":{"":"1"}}`, []violation{{"E100", "metadata."}}},
		{"metadata key of 65", on, `{"metadata":{"` + strings.Repeat("k", 65) + `":"1"}}`, []violation{{"E100", "metadata." + strings.Repeat("k", 65)}}},
		{"metadata value of 512 bytes", on, `{"metadata":{"a":"` + strings.Repeat("é", 256) + `"}}`, nil},
		{"metadata value of 513 bytes", on, `{"metadata":{"a":"` + strings.Repeat("v", 513) + `"}}`, []violation{{"E100", "metadata.a"}}},
		{"metadata over 4 KiB", on, `{"metadata":` + mustJSON(bigMeta(9, 500)) + `}`, []violation{{"E100", "metadata"}}},
		{"metadata value not a string", on, `{"metadata":{"n":1}}`, []violation{{"E100", "metadata.n"}}},
		{"metadata not an object", on, `{"metadata":"x"}`, []violation{{"E100", "metadata"}}},
		{"metadata without scheduling", Policy{}, `{"metadata":{"a":"b"}}`, nil},
		{"sendAt ok", on, `{"sendAt":"2026-12-24T09:00:00-05:00"}`, nil},
		{"sendAt in the past sends now", on, `{"sendAt":"2020-01-01T00:00:00Z"}`, nil},
		{"sendAt 35 days ahead", on, `{"sendAt":"2027-01-08T12:00:00Z"}`, nil},
		{"sendAt 35 days and a second", on, `{"sendAt":"2027-01-08T12:00:01Z"}`, []violation{{"E100", "sendAt"}}},
		{"sendAt without offset", on, `{"sendAt":"2026-12-24T09:00:00"}`, []violation{{"E100", "sendAt"}}},
		{"sendAt a date", on, `{"sendAt":"2026-12-24"}`, []violation{{"E100", "sendAt"}}},
		{"sendAt a number", on, `{"sendAt":1767000000}`, []violation{{"E100", "sendAt"}}},
		{"sendAt refused when not honoured", Policy{}, `{"sendAt":"2026-12-24T09:00:00Z"}`, []violation{{"E100", "sendAt"}}},
		{"expiresAt ok, even past", on, `{"expiresAt":"2026-12-01T00:00:00+01:00"}`, nil},
		{"expiresAt bad", on, `{"expiresAt":"tomorrow"}`, []violation{{"E100", "expiresAt"}}},
		{"expiresAt refused when not honoured", Policy{}, `{"expiresAt":"2026-12-24T09:00:00Z"}`, []violation{{"E100", "expiresAt"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"id":"x","to":"17743199144","from":"1","mmsId":1,` + strings.TrimPrefix(tt.body, "{")
			r, err := Decode([]byte(body))
			if err == nil {
				r.ApplyDefaults(tt.policy)
				err = r.Validate(tt.policy)
			}
			if diff := cmp.Diff(tt.want, violations(err)); diff != "" {
				t.Errorf("violations (-want +got):\n%s\nerr: %v", diff, err)
			}
		})
	}

	cancels := []struct {
		name   string
		policy Policy
		body   string
		want   []violation
	}{
		{"cancel", on, `{"id":"order-1","cancel":true}`, nil},
		{"cancel with something else", on, `{"id":"order-1","cancel":true,"to":"17743199144"}`, []violation{{"E100", "cancel"}}},
		{"cancel with metadata", on, `{"id":"order-1","cancel":true,"metadata":{}}`, []violation{{"E100", "cancel"}}},
		{"cancel without id", on, `{"cancel":true}`, []violation{{"E100", "id"}}},
		{"cancel not boolean", on, `{"id":"order-1","cancel":"yes"}`, []violation{{"E100", "cancel"}}},
		{"cancel false is a send", on, `{"id":"order-1","cancel":false}`, []violation{{"E621", "to"}, {"E620", "mmsId"}}},
		{"cancel refused when not honoured", Policy{}, `{"id":"order-1","cancel":true}`, []violation{{"E100", "cancel"}}},
	}
	for _, tt := range cancels {
		t.Run(tt.name, func(t *testing.T) {
			tt.policy.DefaultFrom = "60856" // not filled into a cancel
			r, err := Decode([]byte(tt.body))
			if err == nil {
				r.ApplyDefaults(tt.policy)
				err = r.Validate(tt.policy)
				if r.Cancel && r.From != "" {
					t.Errorf("ApplyDefaults filled from into a cancel")
				}
			}
			if diff := cmp.Diff(tt.want, violations(err)); diff != "" {
				t.Errorf("violations (-want +got):\n%s\nerr: %v", diff, err)
			}
		})
	}
}

func TestTimes(t *testing.T) {
	r := &Request{SendAt: "2026-12-24T09:00:00-05:00", ExpiresAt: "nope"}
	if st, ok := r.SendTime(); !ok || !st.Equal(time.Date(2026, 12, 24, 14, 0, 0, 0, time.UTC)) {
		t.Errorf("SendTime = %v, %v", st, ok)
	}
	if _, ok := r.ExpiryTime(); ok {
		t.Errorf("ExpiryTime of %q parsed", r.ExpiresAt)
	}
}

func bigMeta(n, size int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m["k"+strings.Repeat("x", i)] = strings.Repeat("v", size)
	}
	return m
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
