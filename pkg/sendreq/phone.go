package sendreq

// Phone numbers as people write them (docs/request.md): "+1 (774) 319-9144"
// is sent, and echoed in events, as 17743199144, because Skycore takes
// digits only (docs/codes.md, "to").

// Digit counts of docs/codes.md's phone rules.
const (
	MinToDigits     = 7  // short international numbers exist (Niue, +683 plus 4 digits)
	MaxToDigits     = 15 // E.164's maximum
	MaxVCardDigits  = 20 // a vCard number may carry an extension
	maxFromDigits   = 15
	phoneSeparators = " -.()"
)

// PhoneDigits returns the digits of s, a phone number written as digits
// with an optional leading '+' and any of space, '-', '.', '(' and ')'
// among them. ok is false when s holds anything else (a letter, a second
// '+'); digits is then "". A string of digits alone is returned as is,
// without allocating.
func PhoneDigits(s string) (digits string, ok bool) {
	n, plain := 0, true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			n++
		case c == '+':
			// Only before the first digit and only once.
			if n > 0 || !plain && hasPlus(s[:i]) {
				return "", false
			}
			plain = false
		case isSeparator(c):
			plain = false
		default:
			return "", false
		}
	}
	if plain {
		return s, true
	}
	b := make([]byte, 0, n)
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' {
			b = append(b, c)
		}
	}
	return string(b), true
}

func isSeparator(c byte) bool {
	for i := 0; i < len(phoneSeparators); i++ {
		if c == phoneSeparators[i] {
			return true
		}
	}
	return false
}

func hasPlus(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '+' {
			return true
		}
	}
	return false
}

// normalizePhone replaces *s by its digits when it is a well-written number;
// anything else is left for Validate to name.
func normalizePhone(s *string) {
	if d, ok := PhoneDigits(*s); ok && d != "" {
		*s = d
	}
}
