// Package keyword reads opt-out and opt-in keywords in inbound messages
// (OPTOUT_KEYWORDS, OPTIN_KEYWORDS; docs/configuration.md and
// docs/events.md "optout / optin").
//
// The rule, in full:
//   - Only the start of the message counts: its first word, or its first
//     two words written together when that is a keyword. Words are split
//     by white space, hyphens and underscores; punctuation around a word
//     is ignored, and so is case.
//   - "STOP", "Stop.", " stop ", "STOP!!", "stop please" are STOP.
//   - "STOP ALL" and "stop-all" are STOPALL (the two words together are a
//     keyword; STOP alone would also have opted out: the effect is the
//     same, the event names the keyword the person meant). "OPT OUT" and
//     "opt-out" are OPTOUT; "UN STOP" is UNSTOP (and, by the same rule, a
//     spaced-out "S TOP" is STOP).
//   - "don't stop", "please stop", "I said STOP" are not keywords: the
//     keyword must come first, so that a reply that only mentions a word
//     does not change anyone's list. Apostrophes are part of a word.
//   - The message text is TEXT for an SMS and SUBJECT for an MMS.
package keyword

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// Intent is what a message asks for.
type Intent int

const (
	None   Intent = iota // not a keyword
	OptOut               // stop sending to me from this code
	OptIn                // start again
)

func (i Intent) String() string {
	switch i {
	case OptOut:
		return "optout"
	case OptIn:
		return "optin"
	}
	return "none"
}

// Defaults: the CTIA list, plus REVOKE and OPTOUT (wordings the 2025 FCC
// rule also counts), and the CTIA opt-ins.
var (
	DefaultOptOut = []string{"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
	DefaultOptIn  = []string{"START", "UNSTOP"}
)

// Lists are the keywords in effect; an empty list matches nothing.
type Lists struct {
	OptOut []string
	OptIn  []string
}

// Defaults returns the default lists.
func Defaults() Lists {
	return Lists{OptOut: slices.Clone(DefaultOptOut), OptIn: slices.Clone(DefaultOptIn)}
}

// FromEnv reads OPTOUT_KEYWORDS and OPTIN_KEYWORDS: unset or "" gives the
// default, "none" turns the list off, otherwise comma-separated words
// (case ignored; a keyword written as two words, "OPT OUT", is kept as
// one, OPTOUT). A word in both lists is an error.
func FromEnv(getenv func(string) string) (Lists, error) {
	out, err := parse("OPTOUT_KEYWORDS", getenv("OPTOUT_KEYWORDS"), DefaultOptOut)
	if err != nil {
		return Lists{}, err
	}
	in, err := parse("OPTIN_KEYWORDS", getenv("OPTIN_KEYWORDS"), DefaultOptIn)
	if err != nil {
		return Lists{}, err
	}
	for _, w := range out {
		if slices.Contains(in, w) {
			return Lists{}, fmt.Errorf("%s is in both OPTOUT_KEYWORDS and OPTIN_KEYWORDS", w)
		}
	}
	return Lists{OptOut: out, OptIn: in}, nil
}

func parse(name, v string, def []string) ([]string, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return slices.Clone(def), nil
	case strings.EqualFold(v, "none"):
		return nil, nil
	}
	var words []string
	for _, raw := range strings.Split(v, ",") {
		w := strings.ToUpper(strings.Join(strings.FieldsFunc(raw, separator), ""))
		if w == "" {
			continue
		}
		for _, r := range w {
			if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				return nil, fmt.Errorf("%s=%q: %q is not a word (letters and digits)", name, v, strings.TrimSpace(raw))
			}
		}
		if !slices.Contains(words, w) {
			words = append(words, w)
		}
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%s=%q: no keyword (\"none\" turns the list off)", name, v)
	}
	return words, nil
}

// Match returns what text asks for and the keyword it matched ("" for
// None). An opt-out wins when the first two words together are an opt-out
// and the first word alone an opt-in, or the other way round: the longer
// match is what the person wrote.
func (l Lists) Match(text string) (Intent, string) {
	words := split(text)
	if len(words) == 0 {
		return None, ""
	}
	first := strings.ToUpper(words[0])
	if len(words) > 1 {
		if i := l.intent(first + strings.ToUpper(words[1])); i != None {
			return i, first + strings.ToUpper(words[1])
		}
	}
	if i := l.intent(first); i != None {
		return i, first
	}
	return None, ""
}

func (l Lists) intent(w string) Intent {
	switch {
	case slices.Contains(l.OptOut, w):
		return OptOut
	case slices.Contains(l.OptIn, w):
		return OptIn
	}
	return None
}

func separator(r rune) bool { return unicode.IsSpace(r) || r == '-' || r == '_' }

// split returns the first two words of s, surrounding punctuation trimmed
// (words made only of punctuation are dropped).
func split(s string) []string {
	var words []string
	for _, f := range strings.FieldsFunc(s, separator) {
		w := strings.TrimFunc(f, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
		if w == "" {
			if len(words) == 0 {
				continue // leading punctuation: "... STOP"
			}
			break
		}
		words = append(words, w)
		if len(words) == 2 {
			break
		}
	}
	return words
}
