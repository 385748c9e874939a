package skycore

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// What Skycore's codes mean, in one place: their classes and the codes
// that ask for something special.

// codes classifies every code on the vendor page and in docs/vendor.md.
// Codes not listed are Permanent (and logged loudly by the caller). E111
// ("Invalid sender to $country") depends on each request's to/from, so it
// is the request's fault, not the account's.
var codes = map[apperr.Code]apperr.Class{
	// Account, key or integration problems: fixing them needs a person.
	"E100": apperr.Config, "E101": apperr.Config, "E102": apperr.Config, "E103": apperr.Config, "E104": apperr.Config,
	"E105": apperr.Config, "E107": apperr.Config, "E109": apperr.Config, "E112": apperr.Config,
	"E627": apperr.Config, "E650": apperr.Config, "E713": apperr.Config, "E714": apperr.Config,
	// Transient: the same request can succeed later.
	"E106": apperr.Retry, "E113": apperr.Retry, "E120": apperr.Retry, "E503": apperr.Retry, "E618": apperr.Retry, "E626": apperr.Retry,
	// This message as built can never succeed.
	"E108": apperr.Permanent, "E110": apperr.Permanent, "E111": apperr.Permanent, "E114": apperr.Permanent, "E115": apperr.Permanent,
	"E241": apperr.Permanent, "E619": apperr.Permanent, "E620": apperr.Permanent, "E621": apperr.Permanent,
	"E622": apperr.Permanent, "E623": apperr.Permanent, "E625": apperr.Permanent, "E628": apperr.Permanent,
	"E629": apperr.Permanent, "E651": apperr.Permanent, "E652": apperr.Permanent, "E655": apperr.Permanent,
	"E715": apperr.Permanent, "E718": apperr.Permanent, "E721": apperr.Permanent, "E803": apperr.Permanent,
	"E1501": apperr.Permanent, "E1502": apperr.Permanent, "E1506": apperr.Permanent, "E1507": apperr.Permanent,
	"E1508": apperr.Permanent, "E1511": apperr.Permanent, "E1515": apperr.Permanent, "E1516": apperr.Permanent,
}

// Class classifies a Skycore ERRORCODE; known reports whether the code is
// in the table (an unknown code is Permanent).
func Class(code apperr.Code) (class apperr.Class, known bool) {
	class, known = codes[code]
	if !known {
		class = apperr.Permanent
	}
	return class, known
}

// Codes lists every classified code (tests and the simulator).
func Codes() []apperr.Code {
	out := make([]apperr.Code, 0, len(codes))
	for c := range codes {
		out = append(out, c)
	}
	return out
}

// Known reports whether e's code is classified (false for an unknown
// vendor code, which the caller should log loudly). mmsgate's own codes
// (HTTP_500, TIMEOUT, NO_TRACKINGID) are not vendor codes.
func Known(e *apperr.Error) bool {
	if !strings.HasPrefix(string(e.Code), "E") {
		return true
	}
	_, known := codes[e.Code]
	return known
}

// RefreshesKey reports whether code means "this API key is not valid":
// E104, after which the sender re-reads the secret once (a key regenerated
// in Skycore and put into the secret needs no redeploy).
func RefreshesKey(code apperr.Code) bool { return code == "E104" }

// LongBackoff reports whether code asks for the longest back-off: E120
// (Skycore's own long throttle) and every account or deployment problem.
func LongBackoff(e *apperr.Error) bool { return e.Code == "E120" || e.Class == apperr.Config }

var everySeconds = regexp.MustCompile(`(\d+)\s*sec`)

// wait reads E106's "You can call API every X seconds".
func wait(code apperr.Code, info string) time.Duration {
	if code != "E106" {
		return 0
	}
	if m := everySeconds.FindStringSubmatch(info); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil && n < 86400 {
			return time.Duration(n) * time.Second
		}
	}
	return 0
}
