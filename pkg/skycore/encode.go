// Package skycore is the client for Skycore's v1 XML API action
// sendSavedMMS (https://www.skycore.com/help/send-saved-mms-v1/): it encodes
// a validated sendreq.Request, posts it, and turns the answer into a
// Response or a classified *apperr.Error.
package skycore

import (
	"bytes"
	"sort"
	"strconv"
	"strings"

	"github.com/mmsgate/mmsgate/pkg/sendreq"
)

// Action is the API action this package speaks.
const Action = "sendSavedMMS"

// AppendRequest appends the <REQUEST> document for r to buf. The output is
// deterministic: slides in slide order, DATA children in key order. r must
// have been validated; empty optional elements are omitted and flags are
// written only when set.
func AppendRequest(buf *bytes.Buffer, apiKey string, r *sendreq.Request) {
	buf.WriteString(`<?xml version="1.0" encoding="UTF-8"?><REQUEST>`)
	elem(buf, "ACTION", Action)
	elem(buf, "API_KEY", apiKey)
	elem(buf, "TO", phone(r.To))
	elem(buf, "FROM", r.From)
	opt(buf, "FROM_MASK", r.FromMask)
	elem(buf, "MMSID", string(r.MMSID))
	opt(buf, "OPERATORID", r.OperatorID)
	opt(buf, "CAMPAIGNREF", r.CampaignRef)
	opt(buf, "CUSTOMSUBJECT", r.Subject)
	var order [sendreq.MaxSlides]int
	for _, i := range slideOrder(r.Slides, order[:0]) {
		s := r.Slides[i]
		buf.WriteString("<CUSTOMTEXT>")
		elem(buf, "VALUE", s.Text)
		elem(buf, "SLIDE", strconv.Itoa(s.Slide))
		buf.WriteString("</CUSTOMTEXT>")
	}
	if f := r.Fallback; f != nil {
		opt(buf, "FALLBACKSMSTEXT", f.Text)
		flag(buf, "DISABLEFALLBACKSMS", "yes", f.Disabled)
		flag(buf, "DISABLEFALLBACKSMSLINK", "yes", f.DisableLink)
	}
	flag(buf, "FORCE_SEND_AS_SMS", "true", r.ForceSendAsSMS)
	flag(buf, "FORCEPASSASLINK", "yes", r.ForcePassAsLink)
	if len(r.Data) > 0 {
		keys := make([]string, 0, len(r.Data))
		for k := range r.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		buf.WriteString("<DATA>")
		for _, k := range keys {
			elem(buf, strings.ToUpper(k), r.Data[k])
		}
		buf.WriteString("</DATA>")
	}
	if c := r.VCard; c != nil {
		appendVCard(buf, c)
	}
	elem(buf, "CLIENT_REFERENCE", r.ID)
	buf.WriteString("</REQUEST>")
}

// appendVCard writes the contract's DYNAMICVCARD. NAME always carries all
// three children, as in the vendor's example; the rest is omitted when empty.
func appendVCard(buf *bytes.Buffer, c *sendreq.VCard) {
	buf.WriteString("<DYNAMICVCARD><NAME>")
	elem(buf, "FIRSTNAME", c.FirstName)
	elem(buf, "LASTNAME", c.LastName)
	elem(buf, "SUFFIX", c.Suffix)
	buf.WriteString("</NAME>")
	opt(buf, "ORGANIZATION", c.Organization)
	opt(buf, "TITLE", c.Title)
	opt(buf, "NOTE", c.Note)
	opt(buf, "PHOTOURL", c.PhotoURL)
	appendEntries(buf, "PHONE", "NUMBER", c.Phones, func(p sendreq.Phone) (string, string) { return phone(p.Number), p.Label })
	appendEntries(buf, "EMAIL", "ID", c.Emails, func(e sendreq.Email) (string, string) { return e.ID, e.Label })
	appendEntries(buf, "PHYSICALADDRESS", "ADDRESS", c.Addresses, func(a sendreq.Address) (string, string) { return a.Address, a.Label })
	buf.WriteString("</DYNAMICVCARD>")
}

// appendEntries writes a vCard list: one element per entry directly under
// DYNAMICVCARD, with its value and optional LABEL (docs/request.md). This is
// the one place that knows the nesting, the least certain part of the
// vendor page.
func appendEntries[T any](buf *bytes.Buffer, name, key string, items []T, get func(T) (value, label string)) {
	for _, it := range items {
		v, l := get(it)
		buf.WriteString("<" + name + ">")
		elem(buf, key, v)
		opt(buf, "LABEL", l)
		buf.WriteString("</" + name + ">")
	}
}

// phone is a number as Skycore takes it, digits only ("+1 (774) 319-9144"
// is 17743199144). ApplyDefaults has normally done it already; doing it
// here too means no caller can send a number Skycore would refuse for its
// punctuation.
func phone(s string) string {
	if d, ok := sendreq.PhoneDigits(s); ok && d != "" {
		return d
	}
	return s
}

// slideOrder lists the slides' indexes in slide order (insertion sort into
// dst: at most 8 entries, no allocation).
func slideOrder(s []sendreq.Slide, dst []int) []int {
	for i := range s {
		dst = append(dst, i)
		for j := len(dst) - 1; j > 0 && s[dst[j]].Slide < s[dst[j-1]].Slide; j-- {
			dst[j], dst[j-1] = dst[j-1], dst[j]
		}
	}
	return dst
}

func elem(buf *bytes.Buffer, name, text string) {
	if text == "" {
		buf.WriteString("<" + name + "/>")
		return
	}
	buf.WriteByte('<')
	buf.WriteString(name)
	buf.WriteByte('>')
	escape(buf, text)
	buf.WriteString("</")
	buf.WriteString(name)
	buf.WriteByte('>')
}

func opt(buf *bytes.Buffer, name, text string) {
	if text != "" {
		elem(buf, name, text)
	}
}

func flag(buf *bytes.Buffer, name, value string, set bool) {
	if set {
		elem(buf, name, value)
	}
}

// escape writes s as XML text. Line feeds and tabs stay literal so that
// slide text keeps its line breaks; CR is escaped because a parser would
// otherwise fold CRLF into LF.
func escape(buf *bytes.Buffer, s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&quot;"
		case '\'':
			esc = "&apos;"
		case '\r':
			esc = "&#xD;"
		default:
			continue
		}
		buf.WriteString(s[last:i])
		buf.WriteString(esc)
		last = i + 1
	}
	buf.WriteString(s[last:])
}
