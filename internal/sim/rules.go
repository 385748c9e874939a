package sim

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// codeText is the vendor page's text for each code the simulator answers.
var codeText = map[string]string{
	"E100":  "Invalid request. Make a valid request via GET/POST/XML with all the required variables.",
	"E101":  "'action' required",
	"E102":  "'api_key' required",
	"E104":  "User Authentication Failed.",
	"E106":  "You can call API every %d seconds.",
	"E108":  "XML Parse error: %s",
	"E110":  "Invalid receiver number.",
	"E111":  "Invalid Sender.",
	"E113":  "Set throughput exceeded for this API action. API call rejected.",
	"E114":  "Phone number is blacklisted. API call rejected.",
	"E120":  "Account has reached the API request limit.",
	"E241":  "This content does not exist.",
	"E503":  "Internal error.",
	"E618":  "Carrier lookup failed. Please retry.",
	"E620":  "The 'mmsid' is required.",
	"E621":  "The 'to' is required.",
	"E622":  "The 'fallbacksmstext' is required.",
	"E626":  "Content unavailable. Encoding in progress, try again later.",
	"E652":  "Incorrect disablefallbacksms value. It is optional, but accepts only 'yes', 'no' or '' if set.",
	"E655":  "FORCE_SEND_AS_SMS node accepts only true/false values.",
	"E713":  "There is billing problem on your account.",
	"E715":  "Number is not subscribed in this campaign",
	"E718":  "The 'campaignref' is required",
	"E721":  "Invalid campaignref",
	"E803":  "'barcodevalue' is required.",
	"E1501": "There is no information added for the vCard.",
	"E1502": "Only jpg, png, and gif images are allowed for the photo in the vCard.",
	"E1506": "Phone number %s added for the vCard is invalid.",
	"E1507": "Phone number %s added for the vCard is blank.",
	"E1508": "Email id %s added for the vCard is invalid.",
	"E1511": "The photo url in the vCard does not exist.",
	"E1515": "The first or last name for the vCard is required.",
	"E1516": "Phone / Email / Physical address %s label added for vCard is invalid.",
}

// knownElements are the REQUEST children the vendor page names; anything
// else is recorded as a warning.
var knownElements = map[string]bool{
	"ACTION": true, "API_KEY": true, "TO": true, "FROM": true, "FROM_MASK": true, "MMSID": true,
	"OPERATORID": true, "CAMPAIGNREF": true, "CUSTOMSUBJECT": true, "CUSTOMTEXT": true,
	"FALLBACKSMSTEXT": true, "DISABLEFALLBACKSMS": true, "DISABLEFALLBACKSMSLINK": true,
	"FORCE_SEND_AS_SMS": true, "FORCEPASSASLINK": true, "DATA": true, "DYNAMICVCARD": true,
	"CLIENT_REFERENCE": true,
}

var vcardElements = map[string]bool{
	"NAME": true, "ORGANIZATION": true, "TITLE": true, "NOTE": true, "PHOTOURL": true,
	"PHONE": true, "EMAIL": true, "PHYSICALADDRESS": true,
}

// failure is a vendor error answer.
type failure struct {
	code string
	info string
}

func fail(code string, args ...any) *failure {
	t := codeText[code]
	if len(args) > 0 {
		t = fmt.Sprintf(t, args...)
	}
	return &failure{code: code, info: t}
}

// accepted is what a successful send resolves to.
type accepted struct {
	mmsID    int64
	to, from string
}

// check validates a request tree as Skycore does; warnings list elements
// the vendor page does not know.
func (a *Account) check(req *node) (acc *accepted, f *failure, warnings []string) {
	for _, c := range req.Children {
		if !knownElements[c.Name] {
			warnings = append(warnings, "unknown element "+c.Name)
		}
	}
	text := func(name string) string { s, _ := req.text(name); return strings.TrimSpace(s) }

	to := text("TO")
	switch {
	case to == "":
		return nil, fail("E621"), warnings
	case !allDigits(to) || len(to) < 7 || len(to) > 15:
		// The page: "the message recipient's phone number in an
		// international format"; Skycore's number format is digits only, no
		// + and no punctuation, at most E.164's 15 digits.
		return nil, fail("E110"), warnings
	case slices.Contains(a.Blacklist, to):
		return nil, fail("E114"), warnings
	}

	idText := text("MMSID")
	if idText == "" {
		return nil, fail("E620"), warnings
	}
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id <= 0 { // not a bigint id: as good as none
		return nil, fail("E620"), warnings
	}
	tpl := a.template(id)
	if tpl == nil {
		return nil, fail("E241"), warnings
	}
	if tpl.Encoding {
		return nil, fail("E626"), warnings
	}

	from := text("FROM")
	fromCountry, ok := a.From[from]
	if !ok {
		return nil, fail("E111"), warnings
	}
	toCountry := countryOf(to)
	if toCountry != fromCountry {
		def, ok := a.CountryDefaults[toCountry]
		if !ok {
			return nil, &failure{code: "E111", info: "Invalid Sender to country code " + toCountry + "."}, warnings
		}
		from = def
	}

	if a.EnforceCampaignCheck {
		ref := text("CAMPAIGNREF")
		subs, known := a.Campaigns[ref]
		switch {
		case ref == "":
			return nil, fail("E718"), warnings
		case !known:
			return nil, fail("E721"), warnings
		case !slices.Contains(subs, to):
			return nil, fail("E715"), warnings
		}
	}

	disabled := strings.ToLower(text("DISABLEFALLBACKSMS"))
	if disabled != "" && disabled != "yes" && disabled != "no" {
		return nil, fail("E652"), warnings
	}
	if v := strings.ToLower(text("FORCE_SEND_AS_SMS")); v != "" && v != "true" && v != "false" {
		return nil, fail("E655"), warnings
	}
	for _, flag := range []string{"DISABLEFALLBACKSMSLINK", "FORCEPASSASLINK"} {
		if v := strings.ToLower(text(flag)); v != "" && v != "yes" && v != "no" && v != "true" && v != "false" {
			return nil, fail("E100"), warnings
		}
	}
	if a.RequireFallbackText && disabled != "yes" && text("FALLBACKSMSTEXT") == "" {
		return nil, fail("E622"), warnings
	}

	for _, ct := range req.all("CUSTOMTEXT") {
		v, hasV := ct.text("VALUE")
		s, hasS := ct.text("SLIDE")
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if !hasV || !hasS || strings.TrimSpace(v) == "" || err != nil || n < 1 || n > tpl.Slides {
			return nil, fail("E100"), warnings
		}
	}

	if data := req.child("DATA"); data != nil {
		for _, d := range data.Children {
			if len(d.Children) > 0 {
				return nil, fail("E100"), warnings
			}
			if strings.EqualFold(d.Name, "BARCODEID") && strings.TrimSpace(d.Text) == "" {
				return nil, fail("E803"), warnings
			}
		}
	}

	cards := req.all("DYNAMICVCARD")
	if len(cards) > 1 {
		return nil, &failure{code: "E100", info: "Only one dynamic vCard per request is allowed."}, warnings
	}
	if len(cards) == 1 {
		if f := a.checkVCard(cards[0]); f != nil {
			return nil, f, warnings
		}
		for _, c := range cards[0].Children {
			if !vcardElements[c.Name] {
				warnings = append(warnings, "unknown element DYNAMICVCARD/"+c.Name)
			}
		}
	}
	return &accepted{mmsID: id, to: to, from: from}, nil, warnings
}

func (a *Account) checkVCard(card *node) *failure {
	empty := true
	var walk func(*node)
	walk = func(n *node) {
		if strings.TrimSpace(n.Text) != "" {
			empty = false
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(card)
	if empty {
		return fail("E1501")
	}
	first, last := "", ""
	if name := card.child("NAME"); name != nil {
		first, _ = name.text("FIRSTNAME")
		last, _ = name.text("LASTNAME")
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" && last == "" || !nameChars(first) || !nameChars(last) {
		return fail("E1515")
	}
	if p, ok := card.text("PHOTOURL"); ok && strings.TrimSpace(p) != "" {
		// The page: "If the photo is not a gif, jpg, or png file or if the
		// photo does not exist, then the request will fail". Skycore
		// fetches it: what counts is the file's type, not how its URL
		// ends. The simulator fetches nothing: a URL it cannot fetch is not
		// an image (E1502), a host under .invalid does not exist (E1511),
		// PhotoTypes says what a URL serves, and anything else is an image.
		p = strings.TrimSpace(p)
		u, err := url.Parse(p)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return fail("E1502")
		}
		if strings.HasSuffix(u.Hostname(), ".invalid") {
			return fail("E1511")
		}
		if ct, ok := a.PhotoTypes[p]; ok && !imageTypes[strings.ToLower(strings.TrimSpace(strings.Split(ct, ";")[0]))] {
			return fail("E1502")
		}
	}
	// docs/request.md: each phone, email and address is one element directly
	// under DYNAMICVCARD, repeated per entry, holding its value and LABEL.
	// An entry holding anything else (a second level of PHONE, say) is
	// refused, so that an encoder that nests them twice shows up here.
	lists := []struct{ entry, value string }{{"PHONE", "NUMBER"}, {"EMAIL", "ID"}, {"PHYSICALADDRESS", "ADDRESS"}}
	for _, l := range lists {
		entries := card.all(l.entry)
		if len(entries) > 4 {
			return &failure{code: "E100", info: fmt.Sprintf("At most 4 %s entries are supported in the vCard.", strings.ToLower(l.entry))}
		}
		for _, e := range entries {
			for _, c := range e.Children {
				if c.Name != l.value && c.Name != "LABEL" {
					return &failure{code: "E100", info: fmt.Sprintf("Invalid request: DYNAMICVCARD/%s/%s.", l.entry, c.Name)}
				}
			}
			v, _ := e.text(l.value)
			v = strings.TrimSpace(v)
			switch l.entry {
			case "PHONE":
				if v == "" {
					return fail("E1507", v)
				}
				if !allDigits(v) {
					return fail("E1506", v)
				}
			case "EMAIL":
				if at := strings.IndexByte(v, '@'); at < 1 || !strings.Contains(v[at:], ".") || strings.ContainsAny(v, " <>") {
					return fail("E1508", v)
				}
			}
			if lb, ok := e.text("LABEL"); ok && lb != "" && lb != "work" && lb != "home" {
				return fail("E1516", lb)
			}
		}
	}
	return nil
}

// imageTypes are the photo types the page names: gif, jpg and png.
var imageTypes = map[string]bool{"image/gif": true, "image/jpeg": true, "image/jpg": true, "image/png": true}

func (a *Account) template(id int64) *Template {
	for i := range a.Templates {
		if a.Templates[i].MMSID == id {
			return &a.Templates[i]
		}
	}
	return nil
}

func nameChars(s string) bool {
	for _, r := range s {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == ' ' || r == '.') {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// countryOf finds the calling code at the start of an international number.
func countryOf(num string) string {
	if strings.HasPrefix(num, "1") || strings.HasPrefix(num, "7") {
		return num[:1]
	}
	if len(num) >= 2 && twoDigit[num[:2]] {
		return num[:2]
	}
	if len(num) >= 3 {
		return num[:3]
	}
	return num
}

var twoDigit = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range strings.Fields("20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98") {
		m[c] = true
	}
	return m
}()
