package apperr

import "net/http"

// skycore classifies every code on the vendor page and in skycore-notes.md §4.
// Codes not listed are Permanent (and logged loudly by the caller).
var skycore = map[Code]Class{
	// Account, key or integration problems: fixing them needs a person.
	"E100": Config, "E101": Config, "E102": Config, "E103": Config, "E104": Config,
	"E105": Config, "E107": Config, "E109": Config, "E111": Config, "E112": Config,
	"E627": Config, "E650": Config, "E713": Config, "E714": Config,
	// Transient: the same request can succeed later.
	"E106": Retry, "E113": Retry, "E120": Retry, "E503": Retry, "E618": Retry, "E626": Retry,
	// This message as built can never succeed.
	"E108": Permanent, "E110": Permanent, "E114": Permanent, "E115": Permanent,
	"E241": Permanent, "E619": Permanent, "E620": Permanent, "E621": Permanent,
	"E622": Permanent, "E623": Permanent, "E625": Permanent, "E628": Permanent,
	"E629": Permanent, "E651": Permanent, "E652": Permanent, "E655": Permanent,
	"E715": Permanent, "E718": Permanent, "E721": Permanent, "E803": Permanent,
	"E1501": Permanent, "E1502": Permanent, "E1506": Permanent, "E1507": Permanent,
	"E1508": Permanent, "E1511": Permanent, "E1515": Permanent, "E1516": Permanent,
}

// SkycoreClass classifies a Skycore ERRORCODE; known reports whether the code
// is in the table.
func SkycoreClass(code Code) (class Class, known bool) {
	class, known = skycore[code]
	return class, known
}

// SkycoreCodes lists every classified code (for tests and the simulator).
func SkycoreCodes() []Code {
	out := make([]Code, 0, len(skycore))
	for c := range skycore {
		out = append(out, c)
	}
	return out
}

// statuses is the one code→HTTP status table (the postback endpoint's
// answers). A payload that can never be processed gets 200: Skycore's retry
// would not fix it.
var statuses = map[Code]int{
	CodeForbidden:   http.StatusForbidden,
	CodeMethod:      http.StatusMethodNotAllowed,
	CodeTooLarge:    http.StatusRequestEntityTooLarge,
	CodeMalformed:   http.StatusOK,
	CodeUnavailable: http.StatusServiceUnavailable,
	CodeBusy:        http.StatusServiceUnavailable,
	CodeTimeout:     http.StatusServiceUnavailable,
	CodeInternal:    http.StatusInternalServerError,
}

// HTTPStatus maps err to the status the postback endpoint answers with;
// nil is 200, an unknown error 500.
func HTTPStatus(err error) int {
	if err == nil {
		return http.StatusOK
	}
	if s, ok := statuses[CodeOf(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}
