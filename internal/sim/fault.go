package sim

import (
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// Fault is injected into matching requests before they are processed, so a
// faulted request is never a send.
type Fault struct {
	// Kind is a vendor code (E100, E106, E111, E113, E120, E503, E618,
	// E713), http500,
	// http502, http503, reset, hang, truncate or html: the request is not
	// processed, so it is never a send. Or accept-hang / accept-reset: the
	// request is processed as usual and, when Skycore accepts it (records
	// it, will send its postbacks), the answer is held for Delay (0: until
	// the caller gives up) or the connection is dropped: the caller sees a
	// timeout or a network error although the message was queued. A request
	// Skycore refuses is answered at once.
	//
	// Or an accepted send answered oddly, the message queued all the same:
	// accept-errorcode (Success with its TRACKINGID and an ERRORCODE too),
	// accept-twostatus (a Success and a Failure STATUS), accept-oversize (a
	// Success over 64 KiB, its STATUS and TRACKINGID first), accept-oddroot
	// (a root other than RESPONSE carrying the TRACKINGID), each of which
	// leaves the caller in doubt; or accept-longtid (a plain Success whose
	// tracking id, postbacks' included, is over 2,048 bytes).
	Kind string `json:"kind"`
	// Rate is the share of matching requests hit (0-1); 0 means all.
	Rate float64 `json:"rate,omitempty"`
	// Count stops the fault after it hit this many requests; 0: no limit.
	Count int   `json:"count,omitempty"`
	Match Match `json:"match"`
	// Seconds is E106's X.
	Seconds int `json:"seconds,omitempty"`
	// Delay is how long accept-hang holds the answer (0: until the caller
	// goes away).
	Delay Duration `json:"delay,omitempty"`
	hits  int
}

var faultKinds = map[string]bool{
	"E100": true, "E106": true, "E111": true, "E113": true, "E120": true, "E503": true, "E618": true, "E713": true,
	"http500": true, "http502": true, "http503": true, "reset": true, "hang": true, "truncate": true, "html": true,
	"accept-hang": true, "accept-reset": true,
	"accept-errorcode": true, "accept-twostatus": true, "accept-oversize": true, "accept-oddroot": true, "accept-longtid": true,
}

// afterAccept reports whether the fault strikes after Skycore accepted.
func (f *Fault) afterAccept() bool { return strings.HasPrefix(f.Kind, "accept-") }

// OddAnswer reports whether kind is an accepted send answered in a form
// that says Skycore took it and something else (the caller is in doubt).
func OddAnswer(kind string) bool {
	switch kind {
	case "accept-errorcode", "accept-twostatus", "accept-oversize", "accept-oddroot":
		return true
	}
	return false
}

// LongTrackingIDBytes is the length of accept-longtid's tracking ids: over
// the 2,048 bytes a postback field or a table key holds.
const LongTrackingIDBytes = 2100

// Latency delays every answer: Fixed plus a uniform Jitter, or an
// exponential distribution with mean Mean.
type Latency struct {
	Fixed  Duration `json:"fixed,omitempty"`
	Jitter Duration `json:"jitter,omitempty"`
	Mean   Duration `json:"mean,omitempty"`
}

func (l Latency) draw(r *rand.Rand) time.Duration {
	d := time.Duration(l.Fixed)
	if l.Jitter > 0 {
		d += time.Duration(r.Int64N(int64(l.Jitter)))
	}
	if l.Mean > 0 {
		d += time.Duration(-math.Log(1-r.Float64()) * float64(l.Mean))
	}
	return d
}
