package sendreq

import "unicode/utf8"

// Warnings: advice the vendor page gives, which Skycore does not enforce.
// The request goes out; the sender logs and counts each warning and lists
// it in the accepted event's warnings (docs/codes.md, "Warnings"). The
// codes are stable: applications may match on them.
const (
	// WarnFallbackLong: fallback.text is over 110 characters. Vendor page,
	// FALLBACKSMSTEXT: "Limit text to 110 characters for best
	// deliverability."
	WarnFallbackLong = "FALLBACK_TEXT_OVER_110"
	// WarnFromMaskUS: a fromMask to a +1 number. Vendor page, FROM_MASK:
	// "Only carriers in certain countries allow Alphanumeric senders. Not
	// supported in the USA." (+1 is the whole North American Numbering
	// Plan; the US is most of it.)
	WarnFromMaskUS = "FROM_MASK_TO_US"
	// WarnSubjectTollFree: a subject with a North American toll-free FROM.
	// Vendor page, CUSTOMSUBJECT: "Toll-Free Numbers may not support a
	// Subject."
	WarnSubjectTollFree = "SUBJECT_TO_TOLL_FREE"
)

// warningText is the log line of each warning.
var warningText = map[string]string{
	WarnFallbackLong:    "fallback.text is over 110 characters: the vendor advises at most 110 for deliverability",
	WarnFromMaskUS:      "fromMask to a +1 number: the vendor says alphanumeric senders are not supported in the USA",
	WarnSubjectTollFree: "subject with a toll-free from: the vendor says toll-free numbers may not support a subject",
}

// WarningText is the human sentence for a warning code ("" if unknown).
func WarningText(code string) string { return warningText[code] }

// Warnings lists the advice-level findings on r, in a fixed order, or nil.
// Call it after ApplyDefaults (it reads the FROM and the digits of `to`
// that will be sent); it never rejects.
func (r *Request) Warnings() []string {
	if r.Cancel {
		return nil
	}
	var out []string
	if r.Fallback != nil && utf8.RuneCountInString(r.Fallback.Text) > WarnFallbackText {
		out = append(out, WarnFallbackLong)
	}
	if to, _ := PhoneDigits(r.To); r.FromMask != "" && len(to) == 11 && to[0] == '1' {
		out = append(out, WarnFromMaskUS)
	}
	if r.Subject != "" && TollFree(r.From) {
		out = append(out, WarnSubjectTollFree)
	}
	return out
}

// TollFree reports whether from is a North American toll-free number (8XX
// area codes 800, 833, 844, 855, 866, 877, 888), written with its country
// code (18005550100) or without it (8005550100).
func TollFree(from string) bool {
	d, ok := PhoneDigits(from)
	if !ok {
		return false
	}
	switch {
	case len(d) == 11 && d[0] == '1':
		d = d[1:]
	case len(d) != 10:
		return false
	}
	if d[0] != '8' || d[1] != d[2] {
		return false
	}
	return d[1] == '0' || d[1] >= '3' && d[1] <= '8'
}
