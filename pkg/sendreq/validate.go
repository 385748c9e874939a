package sendreq

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// Policy is the deployment's part of validation (docs/configuration.md).
type Policy struct {
	DefaultFrom          string // SKYCORE_DEFAULT_FROM
	EnforceCampaignCheck bool   // SKYCORE_ENFORCE_CAMPAIGN_CHECK
	// Scheduling says the caller honours sendAt, expiresAt and cancel. When
	// false a request using any of them is refused (E100, field named)
	// rather than sent at the wrong time or despite its cancel.
	Scheduling bool
	// Now is the clock for sendAt's limit; nil is time.Now.
	Now func() time.Time
}

// Limits, each with its source in docs/codes.md. There is deliberately no
// limit on the fallback text, free vCard text or DATA values: the vendor
// states none, and a local rejection is final for its id.
const (
	MaxIDLen         = 64   // CLIENT_REFERENCE: "a maximum length of 64 characters"
	MaxSubject       = 80   // Skycore 1.3 saveMMS rules [L]
	MaxSlideText     = 5000 // Skycore 1.3 saveMMS rules [L]
	MaxSlides        = 8    // Skycore 1.3 saveMMS rules [L]
	WarnFallbackText = 110  // the vendor's advice for deliverability: a warning only
	MaxVCardEntries  = 4    // the vendor page: "Max phones supported: 4" (and emails, addresses)
	MaxFromMask      = 11   // the medium: an alphanumeric sender is at most 11 characters
)

var dataKey = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)

// ApplyDefaults fills FROM from the policy when the request has none, drops
// an mmsId's leading zeros ("048211" is sent as 48211) and writes `to` and
// the vCard's phone numbers as the digits Skycore takes ("+1 (774)
// 319-9144" becomes 17743199144), so that what is sent, recorded and echoed
// in events is the same. A value that is not a well-written number is left
// as it is, for Validate to name. A cancel is left alone.
func (r *Request) ApplyDefaults(p Policy) {
	if r.Cancel {
		return
	}
	if r.From == "" {
		r.From = p.DefaultFrom
	}
	if isPositiveInt(string(r.MMSID)) {
		r.MMSID = MMSID(strings.TrimLeft(string(r.MMSID), "0"))
	}
	normalizePhone(&r.To)
	if r.VCard != nil {
		for i := range r.VCard.Phones {
			normalizePhone(&r.VCard.Phones[i].Number)
		}
	}
}

// Validate checks every rule of docs/request.md and reports every violated field
// (joined *apperr.Error values; apperr.All lists them). Call ApplyDefaults
// first.
func (r *Request) Validate(p Policy) error {
	v := &validator{}
	r.validate(v, p)
	return apperr.Join(v.errs)
}

type validator struct{ errs []*apperr.Error }

func (v *validator) add(code apperr.Code, field, format string, args ...any) {
	v.errs = append(v.errs, apperr.Invalid(code, field, format, args...))
}

// ok reports whether text would pass v.text, without building a field name.
func (v *validator) ok(s string, max int) bool {
	_, _, bad := xmlUnsafe(s)
	return !bad && (max <= 0 || len(s) <= max || utf8.RuneCountInString(s) <= max)
}

// safe checks that a string can be carried by XML (E108, in any field,
// before the field's own rule).
func (v *validator) safe(field, s string) bool {
	if i, r, bad := xmlUnsafe(s); bad {
		v.add("E108", field, "character %U at offset %d cannot be carried by XML", r, i)
		return false
	}
	return true
}

// text checks that a string can be carried by XML (E108) and is not over
// max characters (E100). It reports whether both hold.
func (v *validator) text(field, s string, max int) bool {
	if i, r, ok := xmlUnsafe(s); ok {
		v.add("E108", field, "character %U at offset %d cannot be carried by XML", r, i)
		return false
	}
	if max > 0 && utf8.RuneCountInString(s) > max {
		v.add("E100", field, "longer than %d characters", max)
		return false
	}
	return true
}

func (r *Request) validate(v *validator, p Policy) {
	switch {
	case r.ID == "":
		v.add("E100", "id", "is required")
	case !ValidID(r.ID):
		v.add("E100", "id", "must be 1-%d characters of A-Z a-z 0-9 . _ : -", MaxIDLen)
	}
	if r.Cancel {
		r.validateCancel(v, p)
		return
	}

	switch to, ok := PhoneDigits(r.To); {
	case strings.TrimSpace(r.To) == "":
		v.add("E621", "to", "is required")
	case !v.safe("to", r.To):
	case !ok || len(to) < MinToDigits || len(to) > MaxToDigits:
		v.add("E110", "to", "must be an international number of %d-%d digits (a leading + and spaces, - . ( ) between them are allowed)", MinToDigits, MaxToDigits)
	}

	switch {
	case r.From == "":
		v.add("E111", "from", "is required when SKYCORE_DEFAULT_FROM is not set")
	case !v.safe("from", r.From):
	case !digits(r.From) || len(r.From) > maxFromDigits:
		v.add("E111", "from", "must be digits (a short code or long code)")
	}

	if v.safe("mmsId", string(r.MMSID)) && !isPositiveInt(string(r.MMSID)) {
		if r.MMSID == "" {
			v.add("E620", "mmsId", "is required")
		} else {
			v.add("E620", "mmsId", "must be a positive integer")
		}
	}

	if r.CampaignRef == "" {
		if p.EnforceCampaignCheck {
			v.add("E718", "campaignRef", "is required: the account enforces the campaign check")
		}
	} else {
		v.safe("campaignRef", r.CampaignRef)
	}

	if r.OperatorID != "" && v.safe("operatorId", r.OperatorID) && !digits(r.OperatorID) {
		v.add("E100", "operatorId", "must be digits")
	}

	if r.FromMask != "" && v.safe("fromMask", r.FromMask) && !validFromMask(r.FromMask) {
		v.add("E100", "fromMask", "must be at most %d characters, not all digits", MaxFromMask)
	}

	v.text("subject", r.Subject, MaxSubject)
	r.validateSlides(v)

	if f := r.Fallback; f != nil {
		v.safe("fallback.text", f.Text) // no length limit: over 110 is a warning
	}

	r.validateData(v)
	if r.VCard != nil {
		r.VCard.validate(v)
	}
	r.validateExtras(v, p)
}

func (r *Request) validateSlides(v *validator) {
	var seen [MaxSlides + 1]bool
	for i, s := range r.Slides {
		switch {
		case s.Slide < 1 || s.Slide > MaxSlides:
			v.add("E100", indexed("slides", i, "slide"), "must be 1-%d", MaxSlides)
		case seen[s.Slide]:
			v.add("E100", indexed("slides", i, "slide"), "slide %d is given twice", s.Slide)
		default:
			seen[s.Slide] = true
		}
		if strings.TrimSpace(s.Text) == "" {
			v.add("E100", indexed("slides", i, "text"), "must not be blank")
		} else if !v.ok(s.Text, MaxSlideText) {
			v.text(indexed("slides", i, "text"), s.Text, MaxSlideText)
		}
	}
}

// indexed builds a field name such as slides[2].text; only called on error.
func indexed(list string, i int, field string) string {
	return fmt.Sprintf("%s[%d].%s", list, i, field)
}

func (r *Request) validateData(v *validator) {
	first := len(v.errs)
	for k, val := range r.Data {
		if !v.safe("data."+k, k) {
			continue
		}
		if !dataKey.MatchString(k) {
			v.add("E100", "data."+k, "key must match %s", dataKey)
			continue
		}
		// Two keys that upper-case to the same DATA element: report the
		// later one in sort order, so the error is deterministic.
		if prev, dup := sameTag(r.Data, k); dup {
			v.add("E100", "data."+k, "same DATA element as key %q", prev)
			continue
		}
		if strings.EqualFold(k, "barcodeid") && val == "" {
			v.add("E803", "data."+k, "barcode value is required when barcodeid is given")
			continue
		}
		v.safe("data."+k, val)
	}
	sortFrom(v.errs[first:])
}

// sortFrom orders errors found walking a map, so that they are deterministic.
func sortFrom(added []*apperr.Error) {
	sort.Slice(added, func(i, j int) bool { return added[i].Field < added[j].Field })
}

// sameTag finds a key that sorts before k and names the same DATA element.
func sameTag(data map[string]string, k string) (string, bool) {
	for other := range data {
		if other < k && strings.EqualFold(other, k) {
			return other, true
		}
	}
	return "", false
}

func (c *VCard) validate(v *validator) {
	if c.empty() {
		v.add("E1501", "vcard", "has no information")
		return
	}
	if c.FirstName == "" && c.LastName == "" {
		v.add("E1515", "vcard", "first or last name is required")
	}
	v.name("vcard.firstName", c.FirstName)
	v.name("vcard.lastName", c.LastName)
	v.safe("vcard.suffix", c.Suffix)
	v.safe("vcard.organization", c.Organization)
	v.safe("vcard.title", c.Title)
	v.safe("vcard.note", c.Note)
	// Whether the photo exists and is a GIF, JPEG or PNG is Skycore's to
	// check (E1502, E1511); its path's ending says nothing about it.
	if c.PhotoURL != "" && v.safe("vcard.photoUrl", c.PhotoURL) && !validPhotoURL(c.PhotoURL) {
		v.add("E1502", "vcard.photoUrl", "must be an absolute http or https URL")
	}
	entries := func(field string, n int) bool {
		if n > MaxVCardEntries {
			v.add("E100", field, "at most %d entries", MaxVCardEntries)
			return false
		}
		return true
	}
	label := func(list string, i int, l string) {
		if l != "" && v.safe(indexed(list, i, "label"), l) && l != "work" && l != "home" {
			v.add("E1516", indexed(list, i, "label"), "label must be work or home")
		}
	}
	if entries("vcard.phones", len(c.Phones)) {
		for i, p := range c.Phones {
			switch d, ok := PhoneDigits(p.Number); {
			case !v.safe(indexed("vcard.phones", i, "number"), p.Number):
			case strings.TrimSpace(p.Number) == "":
				v.add("E1507", indexed("vcard.phones", i, "number"), "phone number is blank")
			case !ok || d == "" || len(d) > MaxVCardDigits:
				v.add("E1506", indexed("vcard.phones", i, "number"), "phone number must be 1-%d digits (a leading + and spaces, - . ( ) between them are allowed)", MaxVCardDigits)
			}
			label("vcard.phones", i, p.Label)
		}
	}
	if entries("vcard.emails", len(c.Emails)) {
		for i, e := range c.Emails {
			if v.safe(indexed("vcard.emails", i, "id"), e.ID) && !validEmail(e.ID) {
				v.add("E1508", indexed("vcard.emails", i, "id"), "email address is invalid")
			}
			label("vcard.emails", i, e.Label)
		}
	}
	if entries("vcard.addresses", len(c.Addresses)) {
		for i, a := range c.Addresses {
			if _, _, bad := xmlUnsafe(a.Address); bad {
				v.safe(indexed("vcard.addresses", i, "address"), a.Address)
			}
			label("vcard.addresses", i, a.Label)
		}
	}
}

func (v *validator) name(field, s string) {
	if s != "" && v.safe(field, s) && !validName(s) {
		v.add("E1515", field, "may hold only letters, digits, space and period")
	}
}

func (c *VCard) empty() bool {
	return c.FirstName == "" && c.LastName == "" && c.Suffix == "" && c.Organization == "" &&
		c.Title == "" && c.Note == "" && c.PhotoURL == "" &&
		len(c.Phones) == 0 && len(c.Emails) == 0 && len(c.Addresses) == 0
}

// ValidID reports whether s is a usable request id (1-64 of A-Z a-z 0-9 . _ : -).
func ValidID(s string) bool {
	if s == "" || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isPositiveInt accepts what fits Skycore's bigint MMSID: digits, leading
// zeros allowed (they are dropped), 1 to 2^63-1.
func isPositiveInt(s string) bool {
	if !digits(s) {
		return false
	}
	s = strings.TrimLeft(s, "0")
	if s == "" || len(s) > 19 {
		return false
	}
	return len(s) < 19 || s <= "9223372036854775807"
}

// validFromMask: what the medium carries as an alphanumeric sender; which
// characters a country's carriers take is theirs to say.
func validFromMask(s string) bool {
	return utf8.RuneCountInString(s) <= MaxFromMask && !digits(s)
}

// validName is the vendor's "alphanumeric, space and period"; letters from
// any script count, since names are not only ASCII.
func validName(s string) bool {
	for _, r := range s {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == ' ' || r == '.') {
			return false
		}
	}
	return true
}

func validEmail(s string) bool {
	if len(s) > 254 || strings.ContainsAny(s, " \t\r\n<>(),;:\"[]\\") {
		return false
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || strings.Contains(domain, "@") {
		return false
	}
	dot := strings.LastIndexByte(domain, '.')
	return dot > 0 && dot < len(domain)-1 && !strings.Contains(domain, "..")
}

func validPhotoURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// xmlUnsafe finds the first character XML 1.0 cannot carry (its Char
// production); invalid UTF-8 counts too.
func xmlUnsafe(s string) (offset int, r rune, found bool) {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return i, r, true
			}
		}
		if !XMLChar(r) {
			return i, r, true
		}
	}
	return 0, 0, false
}

// XMLChar reports whether r is in XML 1.0's Char production.
func XMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}
