package skycore

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"html"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// redacted is what stands for the key in any text that leaves the client.
const redactedKey = "[REDACTED]"

// snippet is a short printable copy of vendor text for an error. Every
// form of the key is redacted before the cut, and a tail that could be
// the start of one is cut too, so no part of the key survives (a page
// that echoes the request would otherwise leak it across the cut).
func snippet(raw []byte, apiKey string) string {
	const max = 120
	s := redact(strings.ToValidUTF8(string(raw), "?"), apiKey)
	s = redact(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s), apiKey)
	if len(s) <= max {
		return s
	}
	s = strings.ToValidUTF8(s[:max], "")
	return cutKeyPrefix(s, apiKey) + "…"
}

// cutKeyPrefix removes a tail of s that is the start of a form of the key.
func cutKeyPrefix(s, apiKey string) string {
	if apiKey == "" {
		return s
	}
	cut := 0
	for _, f := range keyForms(apiKey) {
		for n := min(len(f)-1, len(s)); n > cut; n-- {
			if strings.HasSuffix(s, f[:n]) {
				cut = n
				break
			}
		}
	}
	return strings.ToValidUTF8(s[:len(s)-cut], "")
}

// redact replaces every form of the key in s.
func redact(s, apiKey string) string {
	if apiKey == "" {
		return s
	}
	for _, f := range keyForms(apiKey) {
		if strings.Contains(s, f) {
			s = strings.ReplaceAll(s, f, redactedKey)
		}
	}
	return s
}

// redactErr keeps the error chain (errors.Is still works) but never its key.
func redactErr(err error, apiKey string) error {
	if err == nil || apiKey == "" || redact(err.Error(), apiKey) == err.Error() {
		return err
	}
	return redactedErr{err: err, key: apiKey}
}

type redactedErr struct {
	err error
	key string
}

func (r redactedErr) Error() string { return redact(r.err.Error(), r.key) }
func (r redactedErr) Unwrap() error { return r.err }

// formsCache keeps the forms of the last key (a process uses one key, or
// one at a time across a rotation).
var formsCache struct {
	sync.Mutex
	key   string
	forms []string
}

func keyForms(apiKey string) []string {
	formsCache.Lock()
	defer formsCache.Unlock()
	if formsCache.key != apiKey || formsCache.forms == nil {
		formsCache.key, formsCache.forms = apiKey, computeKeyForms(apiKey)
	}
	return formsCache.forms
}

// computeKeyForms lists every form in which the request could carry the
// key and an answer, a proxy or a log could echo it, longest first (so a
// longer form is replaced whole before a shorter one inside it):
//
//   - as text: raw; XML-escaped as AppendRequest writes it (named
//     entities), as encoding/xml and html write it (numeric ones); JSON-
//     escaped;
//   - URL-encoded, each text form: QueryEscape (the form body: '+' for a
//     space) and PathEscape, upper- and lower-case hex, and twice;
//   - base64 (standard and URL alphabets) of each form above, at each of
//     the three alignments a surrounding body can give it: the whole
//     triples that only the key's bytes determine (8 characters or more).
func computeKeyForms(key string) []string {
	var buf bytes.Buffer
	escape(&buf, key)
	var xe bytes.Buffer
	xml.EscapeText(&xe, []byte(key))
	js, _ := json.Marshal(key)
	text := []string{key, buf.String(), xe.String(), html.EscapeString(key), string(js[1 : len(js)-1])}
	var forms []string
	for _, t := range text {
		forms = append(forms, t)
		for _, u := range []string{url.QueryEscape(t), url.PathEscape(t), url.QueryEscape(url.QueryEscape(t))} {
			forms = append(forms, u, lowerHex(u))
		}
	}
	slices.Sort(forms)
	forms = slices.Compact(forms)
	for _, f := range slices.Clone(forms) {
		for i0 := range 3 {
			m := (len(f) - i0) / 3
			if m < 2 {
				continue
			}
			part := []byte(f[i0 : i0+3*m])
			forms = append(forms, base64.StdEncoding.EncodeToString(part), base64.URLEncoding.EncodeToString(part))
		}
	}
	slices.SortFunc(forms, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(forms)
}

// lowerHex turns the hex digits of every %XX escape to lower case.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lower(b[i+1]), lower(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}
