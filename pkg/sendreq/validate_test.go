package sendreq

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// base is a valid request that each case changes in one place.
func base() *Request {
	return &Request{ID: "id-1", To: "17743199144", From: "60856", MMSID: "48211"}
}

func TestValidate(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	phones := func(n int) []Phone {
		p := make([]Phone, n)
		for i := range p {
			p[i] = Phone{Number: fmt.Sprint(18005550100 + i)}
		}
		return p
	}
	tests := []struct {
		name   string
		policy Policy
		edit   func(r *Request)
		want   []violation
	}{
		{name: "valid", edit: func(r *Request) {}},
		{name: "id missing", edit: func(r *Request) { r.ID = "" }, want: []violation{{"E100", "id"}}},
		{name: "id bad char", edit: func(r *Request) { r.ID = "a/b" }, want: []violation{{"E100", "id"}}},
		{name: "id 64 ok", edit: func(r *Request) { r.ID = long(64) }},
		{name: "id 65", edit: func(r *Request) { r.ID = long(65) }, want: []violation{{"E100", "id"}}},
		{name: "to missing", edit: func(r *Request) { r.To = "" }, want: []violation{{"E621", "to"}}},
		{name: "to with plus ok", edit: func(r *Request) { r.To = "+17743199144" }},
		{name: "to with space ok", edit: func(r *Request) { r.To = "1 7743199144" }},
		{name: "to 6 digits", edit: func(r *Request) { r.To = "123456" }, want: []violation{{"E110", "to"}}},
		{name: "to 7 digits ok", edit: func(r *Request) { r.To = "1234567" }},
		{name: "to 15 digits ok", edit: func(r *Request) { r.To = "123456789012345" }},
		{name: "to 16 digits", edit: func(r *Request) { r.To = "1234567890123456" }, want: []violation{{"E110", "to"}}},
		{name: "from missing, no default", edit: func(r *Request) { r.From = "" }, want: []violation{{"E111", "from"}}},
		{name: "from not digits", edit: func(r *Request) { r.From = "ACME" }, want: []violation{{"E111", "from"}}},
		{name: "mmsId missing", edit: func(r *Request) { r.MMSID = "" }, want: []violation{{"E620", "mmsId"}}},
		{name: "mmsId zero", edit: func(r *Request) { r.MMSID = "0" }, want: []violation{{"E620", "mmsId"}}},
		{name: "mmsId negative", edit: func(r *Request) { r.MMSID = "-5" }, want: []violation{{"E620", "mmsId"}}},
		{name: "mmsId fraction", edit: func(r *Request) { r.MMSID = "1.5" }, want: []violation{{"E620", "mmsId"}}},
		{name: "mmsId over bigint", edit: func(r *Request) { r.MMSID = "9223372036854775808" }, want: []violation{{"E620", "mmsId"}}},
		{name: "mmsId max bigint ok", edit: func(r *Request) { r.MMSID = "9223372036854775807" }},
		{name: "campaign enforced, missing", policy: Policy{EnforceCampaignCheck: true}, edit: func(r *Request) {},
			want: []violation{{"E718", "campaignRef"}}},
		{name: "campaign enforced, given", policy: Policy{EnforceCampaignCheck: true}, edit: func(r *Request) { r.CampaignRef = "c" }},
		{name: "operatorId letters", edit: func(r *Request) { r.OperatorID = "AT&T" }, want: []violation{{"E100", "operatorId"}}},
		{name: "fromMask all digits", edit: func(r *Request) { r.FromMask = "12345" }, want: []violation{{"E100", "fromMask"}}},
		{name: "fromMask 12 chars", edit: func(r *Request) { r.FromMask = "ABCDEFGHIJKL" }, want: []violation{{"E100", "fromMask"}}},
		{name: "fromMask space ok", edit: func(r *Request) { r.FromMask = "AC ME" }},
		{name: "fromMask 11 ok", edit: func(r *Request) { r.FromMask = "Acme_Ltd-1X" }},
		{name: "subject 80 ok", edit: func(r *Request) { r.Subject = long(80) }},
		{name: "subject 81", edit: func(r *Request) { r.Subject = long(81) }, want: []violation{{"E100", "subject"}}},
		{name: "subject counts characters, not bytes", edit: func(r *Request) { r.Subject = strings.Repeat("é", 80) }},
		{name: "slide 0", edit: func(r *Request) { r.Slides = []Slide{{0, "a"}} }, want: []violation{{"E100", "slides[0].slide"}}},
		{name: "slide 9", edit: func(r *Request) { r.Slides = []Slide{{9, "a"}} }, want: []violation{{"E100", "slides[0].slide"}}},
		{name: "slide twice", edit: func(r *Request) { r.Slides = []Slide{{2, "a"}, {2, "b"}} }, want: []violation{{"E100", "slides[1].slide"}}},
		{name: "slide text empty", edit: func(r *Request) { r.Slides = []Slide{{1, ""}} }, want: []violation{{"E100", "slides[0].text"}}},
		{name: "slide text 5001", edit: func(r *Request) { r.Slides = []Slide{{1, long(5001)}} }, want: []violation{{"E100", "slides[0].text"}}},
		{name: "slide text 5000 ok", edit: func(r *Request) { r.Slides = []Slide{{1, long(5000)}} }},
		{name: "fallback 161 ok (warned)", edit: func(r *Request) { r.Fallback = &Fallback{Text: long(161)} }},
		{name: "fallback 160 ok (warned)", edit: func(r *Request) { r.Fallback = &Fallback{Text: long(160)} }},
		{name: "data key bad", edit: func(r *Request) { r.Data = map[string]string{"1abc": "x"} }, want: []violation{{"E100", "data.1abc"}}},
		{name: "data key dash", edit: func(r *Request) { r.Data = map[string]string{"first-name": "x"} }, want: []violation{{"E100", "data.first-name"}}},
		{name: "data keys same tag", edit: func(r *Request) { r.Data = map[string]string{"Name": "a", "name": "b"} }, want: []violation{{"E100", "data.name"}}},
		{name: "barcodeid empty", edit: func(r *Request) { r.Data = map[string]string{"barcodeid": ""} }, want: []violation{{"E803", "data.barcodeid"}}},
		{name: "BarcodeId empty", edit: func(r *Request) { r.Data = map[string]string{"BarcodeId": ""} }, want: []violation{{"E803", "data.BarcodeId"}}},
		{name: "other data empty ok", edit: func(r *Request) { r.Data = map[string]string{"firstname": ""} }},
		{name: "NUL in subject", edit: func(r *Request) { r.Subject = "a\x00b" }, want: []violation{{"E108", "subject"}}},
		{name: "control char in slide", edit: func(r *Request) { r.Slides = []Slide{{1, "a\x1bb"}} }, want: []violation{{"E108", "slides[0].text"}}},
		{name: "U+FFFE in data", edit: func(r *Request) { r.Data = map[string]string{"a": "\uFFFE"} }, want: []violation{{"E108", "data.a"}}},
		{name: "invalid UTF-8 in note", edit: func(r *Request) { r.VCard = &VCard{LastName: "A", Note: "\xff"} }, want: []violation{{"E108", "vcard.note"}}},
		{name: "tab and newlines ok", edit: func(r *Request) { r.Slides = []Slide{{1, "a\tb\r\nc"}} }},
		{name: "vcard empty", edit: func(r *Request) { r.VCard = &VCard{} }, want: []violation{{"E1501", "vcard"}}},
		{name: "vcard no names", edit: func(r *Request) { r.VCard = &VCard{Organization: "Acme"} }, want: []violation{{"E1515", "vcard"}}},
		{name: "vcard only last name ok", edit: func(r *Request) { r.VCard = &VCard{LastName: "Support"} }},
		{name: "vcard name special char", edit: func(r *Request) { r.VCard = &VCard{FirstName: "Ann-Marie"} }, want: []violation{{"E1515", "vcard.firstName"}}},
		{name: "vcard name period and space ok", edit: func(r *Request) { r.VCard = &VCard{FirstName: "J. R. R.", LastName: "Tolkien"} }},
		{name: "vcard photo any ext ok", edit: func(r *Request) { r.VCard = &VCard{LastName: "A", PhotoURL: "https://x.example/a.bmp"} }},
		{name: "vcard photo ftp", edit: func(r *Request) { r.VCard = &VCard{LastName: "A", PhotoURL: "ftp://x.example/a.png"} }, want: []violation{{"E1502", "vcard.photoUrl"}}},
		{name: "vcard photo not URL", edit: func(r *Request) { r.VCard = &VCard{LastName: "A", PhotoURL: "a.png"} }, want: []violation{{"E1502", "vcard.photoUrl"}}},
		{name: "vcard photo jpeg ok", edit: func(r *Request) { r.VCard = &VCard{LastName: "A", PhotoURL: "https://x.example/a.jpeg?v=2"} }},
		{name: "vcard 5 phones", edit: func(r *Request) { r.VCard = &VCard{LastName: "A", Phones: phones(5)} }, want: []violation{{"E100", "vcard.phones"}}},
		{name: "vcard 4 phones ok", edit: func(r *Request) { r.VCard = &VCard{LastName: "A", Phones: phones(4)} }},
		{name: "vcard 5 emails", edit: func(r *Request) {
			r.VCard = &VCard{LastName: "A", Emails: []Email{{ID: "a@b.c"}, {ID: "a@b.c"}, {ID: "a@b.c"}, {ID: "a@b.c"}, {ID: "a@b.c"}}}
		}, want: []violation{{"E100", "vcard.emails"}}},
		{name: "vcard 5 addresses", edit: func(r *Request) {
			r.VCard = &VCard{LastName: "A", Addresses: []Address{{Address: "a"}, {Address: "a"}, {Address: "a"}, {Address: "a"}, {Address: "a"}}}
		}, want: []violation{{"E100", "vcard.addresses"}}},
		{name: "vcard phone blank", edit: func(r *Request) { r.VCard = &VCard{LastName: "A", Phones: []Phone{{Number: " "}}} }, want: []violation{{"E1507", "vcard.phones[0].number"}}},
		{name: "vcard phone letters", edit: func(r *Request) { r.VCard = &VCard{LastName: "A", Phones: []Phone{{Number: "1-800-FLOWERS"}}} }, want: []violation{{"E1506", "vcard.phones[0].number"}}},
		{name: "vcard email bad", edit: func(r *Request) { r.VCard = &VCard{LastName: "A", Emails: []Email{{ID: "not-an-email"}}} }, want: []violation{{"E1508", "vcard.emails[0].id"}}},
		{name: "vcard email no tld", edit: func(r *Request) { r.VCard = &VCard{LastName: "A", Emails: []Email{{ID: "a@b"}}} }, want: []violation{{"E1508", "vcard.emails[0].id"}}},
		{name: "vcard label mobile", edit: func(r *Request) { r.VCard = &VCard{LastName: "A", Phones: []Phone{{Number: "1", Label: "mobile"}}} }, want: []violation{{"E1516", "vcard.phones[0].label"}}},
		{name: "vcard email label", edit: func(r *Request) { r.VCard = &VCard{LastName: "A", Emails: []Email{{ID: "a@b.co", Label: "Work"}}} }, want: []violation{{"E1516", "vcard.emails[0].label"}}},
		{name: "vcard address label", edit: func(r *Request) {
			r.VCard = &VCard{LastName: "A", Addresses: []Address{{Address: "x", Label: "office"}}}
		}, want: []violation{{"E1516", "vcard.addresses[0].label"}}},
		{name: "every problem reported", edit: func(r *Request) {
			r.To, r.MMSID, r.Subject = "", "", long(81)
			r.VCard = &VCard{FirstName: "A!", Phones: []Phone{{Number: "x", Label: "fax"}}}
		}, want: []violation{{"E621", "to"}, {"E620", "mmsId"}, {"E100", "subject"}, {"E1515", "vcard.firstName"}, {"E1506", "vcard.phones[0].number"}, {"E1516", "vcard.phones[0].label"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := base()
			tt.edit(r)
			err := r.Validate(tt.policy)
			if diff := cmp.Diff(tt.want, violations(err)); diff != "" {
				t.Errorf("Validate violations (-want +got):\n%s\nerr: %v", diff, err)
			}
		})
	}
}

func TestApplyDefaults(t *testing.T) {
	r := base()
	r.From = ""
	r.ApplyDefaults(Policy{DefaultFrom: "60856"})
	if r.From != "60856" {
		t.Errorf("From = %q, want the default", r.From)
	}
	r.From = "11111"
	r.ApplyDefaults(Policy{DefaultFrom: "60856"})
	if r.From != "11111" {
		t.Errorf("From = %q, want the request's own", r.From)
	}
}

func FuzzValidate(f *testing.F) {
	f.Add("17743199144", "48211", "subject", "x@y.zz", "https://a.b/c.png")
	f.Add("", "", "\x00", "", "")
	f.Fuzz(func(t *testing.T, to, mmsid, subject, email, photo string) {
		r := &Request{ID: "f", To: to, From: "1", MMSID: MMSID(mmsid), Subject: subject,
			VCard: &VCard{LastName: "A", PhotoURL: photo, Emails: []Email{{ID: email}}}}
		err := r.Validate(Policy{})
		for _, v := range violations(err) {
			if v.Code == "" || v.Field == "" {
				t.Fatalf("violation without code or field: %+v", v)
			}
		}
	})
}

// TestRevisedRules: the contract revision's rules — an XML-illegal
// character is E108 in every field, before the field's own rule; leading
// zeros of mmsId are allowed and dropped.
func TestRevisedRules(t *testing.T) {
	tests := map[string]struct {
		mod       func(r *Request)
		wantCode  string // "" = valid
		wantField string
	}{
		"leading zeros":       {func(r *Request) { r.MMSID = "048211" }, "", ""},
		"only zeros":          {func(r *Request) { r.MMSID = "000" }, "E620", "mmsId"},
		"zeros then too big":  {func(r *Request) { r.MMSID = "0009223372036854775808" }, "E620", "mmsId"},
		"control in to":       {func(r *Request) { r.To = "1774\x01" }, "E108", "to"},
		"control in from":     {func(r *Request) { r.From = "6\x02" }, "E108", "from"},
		"control in email":    {func(r *Request) { r.VCard = &VCard{FirstName: "A", Emails: []Email{{ID: "a\x01@b.example"}}} }, "E108", "vcard.emails[0].id"},
		"control in name":     {func(r *Request) { r.VCard = &VCard{FirstName: "A\x1b"} }, "E108", "vcard.firstName"},
		"control in phone":    {func(r *Request) { r.VCard = &VCard{FirstName: "A", Phones: []Phone{{Number: "1\x00"}}} }, "E108", "vcard.phones[0].number"},
		"control in label":    {func(r *Request) { r.VCard = &VCard{FirstName: "A", Phones: []Phone{{Number: "1", Label: "w\x01"}}} }, "E108", "vcard.phones[0].label"},
		"control in data key": {func(r *Request) { r.Data = map[string]string{"a\x01": "v"} }, "E108", "data.a\x01"},
		"control in operator": {func(r *Request) { r.OperatorID = "1\x01" }, "E108", "operatorId"},
		"control in fromMask": {func(r *Request) { r.FromMask = "AC\x01" }, "E108", "fromMask"},
		"plain bad email":     {func(r *Request) { r.VCard = &VCard{FirstName: "A", Emails: []Email{{ID: "nope"}}} }, "E1508", "vcard.emails[0].id"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r := base()
			tt.mod(r)
			r.ApplyDefaults(Policy{})
			err := r.Validate(Policy{})
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want valid", err)
				}
				return
			}
			all := apperr.All(err)
			if len(all) == 0 || string(all[0].Code) != tt.wantCode || all[0].Field != tt.wantField {
				t.Errorf("Validate = %v, want %s on %s first", err, tt.wantCode, tt.wantField)
			}
		})
	}
	r := base()
	r.MMSID = "048211"
	r.ApplyDefaults(Policy{})
	if r.MMSID != "48211" {
		t.Errorf("ApplyDefaults kept mmsId %q, want 48211", r.MMSID)
	}
}
