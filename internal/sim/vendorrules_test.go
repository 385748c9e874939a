package sim

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// vendorCase is one entry of pkg/sendreq/testdata/vendor-rules.json: the
// vectors that pkg/sendreq's validation is tested against too, so that the
// two cannot drift apart silently.
type vendorCase struct {
	Name    string          `json:"name"`
	Request json.RawMessage `json:"request"`
	Code    string          `json:"code"`
	Policy  struct {
		DefaultFrom          string `json:"defaultFrom"`
		EnforceCampaignCheck bool   `json:"enforceCampaignCheck"`
	} `json:"policy"`
}

// TestVendorRules sends every shared vector to the simulator, as XML
// written by vectorXML (not pkg/skycore's encoder), and compares ERRORCODE.
func TestVendorRules(t *testing.T) {
	b, err := os.ReadFile("../../pkg/sendreq/testdata/vendor-rules.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []vendorCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	// The campaign-check account: every number of the vectors is subscribed
	// to every campaignRef they name.
	strict := Account{APIKey: "strict-key", From: map[string]string{"60856": "1"}, CountryDefaults: Default().Accounts[0].CountryDefaults,
		Templates: Default().Accounts[0].Templates, EnforceCampaignCheck: true, Campaigns: map[string][]string{}}
	seen := map[string]bool{}
	for _, c := range cases {
		var r vectorRequest
		if err := json.Unmarshal(c.Request, &r); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if seen[c.Name] {
			t.Errorf("case name %q twice", c.Name)
		}
		seen[c.Name] = true
		if r.CampaignRef != "" {
			if r.To != nil {
				strict.Campaigns[r.CampaignRef] = append(strict.Campaigns[r.CampaignRef], *r.To)
			}
		}
	}
	cfg := Default()
	cfg.Accounts = append(cfg.Accounts, strict)
	_, base := start(t, cfg)

	codes := map[string]bool{}
	for _, c := range cases {
		codes[c.Code] = true
		t.Run(c.Name, func(t *testing.T) {
			var r vectorRequest
			d := json.NewDecoder(bytes.NewReader(c.Request))
			d.DisallowUnknownFields()
			d.UseNumber()
			if err := d.Decode(&r); err != nil {
				t.Fatalf("request %s: %v", c.Request, err)
			}
			apiKey := key
			if c.Policy.EnforceCampaignCheck {
				apiKey = "strict-key"
			}
			if r.From == nil && c.Policy.DefaultFrom != "" {
				r.From = &c.Policy.DefaultFrom
			}
			a := postXML(t, base, vectorXML(apiKey, &r))
			if a.Code != c.Code {
				t.Errorf("ERRORCODE = %q (%s), want %q", a.Code, a.Info, c.Code)
			}
		})
	}
	// Every rule with a vendor code is covered.
	for _, code := range []string{"", "E110", "E621", "E620", "E111", "E718", "E803", "E1501", "E1502", "E1506", "E1507",
		"E1508", "E1515", "E1516", "E108"} {
		if !codes[code] {
			t.Errorf("no vector for %q", code)
		}
	}
}

// vectorRequest is docs/request.md's send request, as the test reads it.
type vectorRequest struct {
	ID              string            `json:"id"`
	To              *string           `json:"to"`
	From            *string           `json:"from"`
	MMSID           json.RawMessage   `json:"mmsId"`
	CampaignRef     string            `json:"campaignRef"`
	OperatorID      string            `json:"operatorId"`
	FromMask        string            `json:"fromMask"`
	Subject         string            `json:"subject"`
	Slides          []vectorSlide     `json:"slides"`
	Fallback        *vectorFallback   `json:"fallback"`
	ForceSendAsSMS  bool              `json:"forceSendAsSms"`
	ForcePassAsLink bool              `json:"forcePassAsLink"`
	Data            map[string]string `json:"data"`
	VCard           *vectorVCard      `json:"vcard"`
}

type vectorSlide struct {
	Slide int    `json:"slide"`
	Text  string `json:"text"`
}

type vectorFallback struct {
	Text        string `json:"text"`
	Disabled    bool   `json:"disabled"`
	DisableLink bool   `json:"disableLink"`
}

type vectorVCard struct {
	FirstName    string `json:"firstName"`
	LastName     string `json:"lastName"`
	Suffix       string `json:"suffix"`
	Organization string `json:"organization"`
	Title        string `json:"title"`
	Note         string `json:"note"`
	PhotoURL     string `json:"photoUrl"`
	Phones       []struct {
		Number string `json:"number"`
		Label  string `json:"label"`
	} `json:"phones"`
	Emails []struct {
		ID    string `json:"id"`
		Label string `json:"label"`
	} `json:"emails"`
	Addresses []struct {
		Address string `json:"address"`
		Label   string `json:"label"`
	} `json:"addresses"`
}

// vectorXML writes the REQUEST for r the way docs/request.md maps it, with an
// escaper of its own that leaves XML-illegal characters in place (as a
// careless encoder would), so that the simulator's parser meets them.
func vectorXML(apiKey string, r *vectorRequest) string {
	var b strings.Builder
	e := func(name, text string) {
		b.WriteString("<" + name + ">")
		b.WriteString(strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(text))
		b.WriteString("</" + name + ">")
	}
	opt := func(name, text string) {
		if text != "" {
			e(name, text)
		}
	}
	b.WriteString("<REQUEST>")
	e("ACTION", "sendSavedMMS")
	e("API_KEY", apiKey)
	e("CLIENT_REFERENCE", r.ID)
	if r.To != nil {
		e("TO", digitsOf(*r.To))
	}
	if r.From != nil {
		e("FROM", *r.From)
	}
	if len(r.MMSID) > 0 {
		id := strings.Trim(string(r.MMSID), `"`)
		if n, err := strconv.ParseUint(id, 10, 64); err == nil && n > 0 {
			id = strconv.FormatUint(n, 10) // leading zeros dropped
		}
		e("MMSID", id)
	}
	opt("CAMPAIGNREF", r.CampaignRef)
	opt("OPERATORID", r.OperatorID)
	opt("FROM_MASK", r.FromMask)
	opt("CUSTOMSUBJECT", r.Subject)
	for _, s := range r.Slides {
		b.WriteString("<CUSTOMTEXT>")
		e("VALUE", s.Text)
		e("SLIDE", strconv.Itoa(s.Slide))
		b.WriteString("</CUSTOMTEXT>")
	}
	if f := r.Fallback; f != nil {
		opt("FALLBACKSMSTEXT", f.Text)
		if f.Disabled {
			e("DISABLEFALLBACKSMS", "yes")
		}
		if f.DisableLink {
			e("DISABLEFALLBACKSMSLINK", "yes")
		}
	}
	if r.ForceSendAsSMS {
		e("FORCE_SEND_AS_SMS", "true")
	}
	if r.ForcePassAsLink {
		e("FORCEPASSASLINK", "yes")
	}
	if len(r.Data) > 0 {
		keys := make([]string, 0, len(r.Data))
		for k := range r.Data {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.WriteString("<DATA>")
		for _, k := range keys {
			e(strings.ToUpper(k), r.Data[k])
		}
		b.WriteString("</DATA>")
	}
	if c := r.VCard; c != nil {
		b.WriteString("<DYNAMICVCARD>")
		if c.FirstName != "" || c.LastName != "" || c.Suffix != "" {
			b.WriteString("<NAME>")
			opt("FIRSTNAME", c.FirstName)
			opt("LASTNAME", c.LastName)
			opt("SUFFIX", c.Suffix)
			b.WriteString("</NAME>")
		}
		opt("ORGANIZATION", c.Organization)
		opt("TITLE", c.Title)
		opt("NOTE", c.Note)
		opt("PHOTOURL", c.PhotoURL)
		entry := func(outer, valueName, value, label string) {
			b.WriteString("<" + outer + ">")
			e(valueName, value)
			opt("LABEL", label)
			b.WriteString("</" + outer + ">")
		}
		for _, p := range c.Phones {
			entry("PHONE", "NUMBER", digitsOf(p.Number), p.Label)
		}
		for _, m := range c.Emails {
			entry("EMAIL", "ID", m.ID, m.Label)
		}
		for _, a := range c.Addresses {
			entry("PHYSICALADDRESS", "ADDRESS", a.Address, a.Label)
		}
		b.WriteString("</DYNAMICVCARD>")
	}
	b.WriteString("</REQUEST>")
	return b.String()
}

// digitsOf is docs/request.md's "sent as digits", written here without
// pkg/sendreq: a number of digits with an optional leading + and spaces,
// '-', '.', '(' and ')' among them is sent as its digits; anything else
// goes as it is, for the simulator to judge.
func digitsOf(s string) string {
	var b strings.Builder
	for i, c := range s {
		switch {
		case c >= '0' && c <= '9':
			b.WriteRune(c)
		case c == '+' && strings.TrimLeft(s[:i], " ") == "":
		case strings.ContainsRune(" -.()", c):
		default:
			return s
		}
	}
	if b.Len() == 0 {
		return s
	}
	return b.String()
}
