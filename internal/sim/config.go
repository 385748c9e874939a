// Package sim is a Skycore simulator: the v1 XML API's sendSavedMMS as the
// vendor page describes it, the delivery postbacks of docs/vendor.md
// with Skycore's retry rules, fault injection, and inspection endpoints
// under /_sim/. It parses requests into a generic element tree and shares
// no code with pkg/skycore, so an encoder bug shows up here as an error
// (the vCard's phones, emails and addresses must be one level deep,
// docs/request.md; an entry nested twice is E100). Its rules are tested against the
// vectors in pkg/sendreq/testdata/vendor-rules.json, as sendreq's are.
//
// Faults and disorder, each off by default (Config fields; cmd/skycore-sim
// has a flag for each):
//
//   - Faults: per-request vendor errors (E100, E106, E111, E113, E120,
//     E503, E618, E713) and transport faults (http500/502/503, reset, hang, truncate,
//     html), by rate, count and match; none of these is a send.
//   - accept-hang / accept-reset (Fault kinds): Skycore accepts and queues
//     the message, then holds the answer past the caller's timeout (or for
//     Delay) or drops the connection: the caller sees TIMEOUT or NETWORK
//     although the postbacks come.
//   - accept-errorcode / accept-twostatus / accept-oversize / accept-oddroot
//     (Fault kinds): Skycore queues the message and answers in a form that
//     says so and something else (the caller is in doubt); accept-longtid:
//     a Success whose tracking id is over 2,048 bytes.
//   - Outages (and StartOutage, PUT /_sim/outage): a window in which every
//     call gets E503, an HTML 503, a reset, or a refused connection.
//   - OmitClientReferenceRate: postbacks without CLIENT_REFERENCE.
//   - EarlyPostbackRate: the first postback is delivered before the send's
//     answer is written.
//   - NoReceiptCarriers / SilentCarriers: carriers (SPIDs) that send no
//     delivery receipt (N101 only) or no postback at all; the no-receipt
//     and none scenarios do the same by message.
//   - RateLimit / MinInterval: the account's throughput (E113 beyond N
//     calls in any second, all callers together) and E106's interval
//     between one key's calls; GET /_sim/throughput counts what they
//     refused (each refused call is in /_sim/requests with its code and
//     "throttled").
//   - DuplicateRate / ReorderRate: postbacks delivered twice or out of
//     order; postback retries follow Skycore's (RetryInterval, MaxRetries).
//
// GET /_sim/requests lists every call with its outcome: accepted says
// whether Skycore queued the message (whatever the caller got back), so a
// CLIENT_REFERENCE accepted twice is a message sent twice.
package sim

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Config is the simulator's configuration (a JSON file, or Default()).
type Config struct {
	Accounts []Account `json:"accounts"`
	// PostbackURL receives the delivery postbacks; empty: none are sent.
	PostbackURL string `json:"postbackUrl,omitempty"`
	// PostbackDelay is the pause before each postback of a message.
	PostbackDelay Duration `json:"postbackDelay,omitempty"`
	// RetryInterval is Skycore's wait before a postback retry (5 min).
	RetryInterval Duration `json:"retryInterval,omitempty"`
	// MaxRetries is how often a postback is retried before it is dropped (5).
	MaxRetries int `json:"maxRetries,omitempty"`
	// PostbackTimeout is how long the receiver has to answer (10 s).
	PostbackTimeout Duration `json:"postbackTimeout,omitempty"`
	// PostbackConcurrency bounds the postbacks in flight: Skycore drains its
	// postback queue steadily rather than all at once (default 4).
	PostbackConcurrency int `json:"postbackConcurrency,omitempty"`
	// Seed makes scenario mixes and fault rates repeatable.
	Seed int64 `json:"seed,omitempty"`
	// Scenarios choose what happens after acceptance.
	Scenarios Scenarios `json:"scenarios"`
	// Faults are injected before a request is processed.
	Faults []Fault `json:"faults,omitempty"`
	// Latency is added to every answer.
	Latency Latency `json:"latency"`
	// DuplicateRate re-delivers an accepted postback this often (0-1).
	DuplicateRate float64 `json:"duplicateRate,omitempty"`
	// ReorderRate sends a message's later postback first this often (0-1).
	ReorderRate float64 `json:"reorderRate,omitempty"`
	// OmitClientReferenceRate leaves CLIENT_REFERENCE out of this share of
	// postbacks (0-1), as Skycore may: the receiver must join them through
	// the tracking id alone. A postback's retries keep its choice.
	OmitClientReferenceRate float64 `json:"omitClientReferenceRate,omitempty"`
	// ReferenceOnLostAnswers keeps CLIENT_REFERENCE on every postback of a
	// send whose answer was lost or odd (an accept-* fault, or a reference
	// marked with Server.KeepReference): mmsgate reconciles such an in-doubt
	// send only through a postback carrying it (docs/events.md); without one it
	// is sent again after SEND_INDOUBT_WINDOW, a case its unit tests cover.
	ReferenceOnLostAnswers bool `json:"referenceOnLostAnswers,omitempty"`
	// OmitReferenceFromReceiptsOnly limits OmitClientReferenceRate to the
	// final receipts (N102, E102, N202, E202): every send's first postback
	// (N101) carries its CLIENT_REFERENCE, so any in-doubt send, however its
	// answer was lost, can be reconciled as the contract allows.
	OmitReferenceFromReceiptsOnly bool `json:"omitReferenceFromReceiptsOnly,omitempty"`
	// EarlyPostbackRate delivers the first postback of this share of
	// accepted sends (0-1) before the send's HTTP answer is written: Skycore
	// queued the message and its postback fired while the answer was still
	// on its way. One attempt is made synchronously; a failed one is retried
	// as usual.
	EarlyPostbackRate float64 `json:"earlyPostbackRate,omitempty"`
	// NoReceiptCarriers are SPIDs (see Carriers) that never send a delivery
	// receipt: their messages get N101 and no final N102/E102/N202/E202.
	NoReceiptCarriers []string `json:"noReceiptCarriers,omitempty"`
	// SilentCarriers are SPIDs whose messages get no postback at all.
	SilentCarriers []string `json:"silentCarriers,omitempty"`
	// Outages are windows, counted from New, in which every API call fails
	// the same way (see Outage); StartOutage opens one at run time.
	Outages []Outage `json:"outages,omitempty"`
	// RateLimit is the account's throughput: at most this many calls in
	// any one second, over all callers; beyond it a call is answered E113
	// and not processed (see throughput). 0 is off.
	RateLimit float64 `json:"rateLimit,omitempty"`
	// MinInterval, when set, is E106's X: a key's call sooner than this
	// after its previous admitted call is answered E106. 0 is off.
	MinInterval Duration `json:"minInterval,omitempty"`
}

// Outage is a window in which Skycore is down for every call.
type Outage struct {
	// Kind is E503 (a Failure answer), http503 (an HTML 503 page), reset
	// (the connection is dropped) or refused (nothing listens: the port is
	// closed for the window and open connections are dropped; when the
	// simulator was not started with Start, refused acts as reset).
	Kind string `json:"kind"`
	// Start is when the window opens, after New (config) or after the call
	// (StartOutage).
	Start Duration `json:"start,omitempty"`
	// Length is how long it lasts.
	Length Duration `json:"length"`
}

var outageKinds = map[string]bool{"E503": true, "http503": true, "reset": true, "refused": true}

// Carriers are the SPIDs postbacks carry (APPENDIX E), one per TO number.
func Carriers() []string { return append([]string(nil), carriers...) }

// CarrierOf is the SPID the simulator's postbacks give to a TO number.
func CarrierOf(to string) string { return carriers[hash(0, to)%uint64(len(carriers))] }

// Account is one Skycore account.
type Account struct {
	APIKey string `json:"apiKey"`
	// From lists the allowed FROM codes with the country code they serve.
	From map[string]string `json:"from"`
	// CountryDefaults is the default FROM for a destination country code,
	// used when TO is in another country than the FROM.
	CountryDefaults      map[string]string   `json:"countryDefaults,omitempty"`
	Templates            []Template          `json:"templates"`
	EnforceCampaignCheck bool                `json:"enforceCampaignCheck,omitempty"`
	Campaigns            map[string][]string `json:"campaigns,omitempty"` // campaignRef → subscribed numbers
	Blacklist            []string            `json:"blacklist,omitempty"`
	RequireFallbackText  bool                `json:"requireFallbackText,omitempty"`
	// PhotoTypes is the Content-Type that a vCard photo URL serves, as
	// Skycore would find on fetching it: a type other than GIF, JPEG or PNG
	// is E1502. A URL not listed is taken to be an image.
	PhotoTypes map[string]string `json:"photoTypes,omitempty"`
}

// Template is a saved MMS.
type Template struct {
	MMSID    int64 `json:"mmsId"`
	Slides   int   `json:"slides"`
	Encoding bool  `json:"encoding,omitempty"` // still encoding: E626
}

// Default is what `skycore-sim` runs with no config file (docs/local.md).
func Default() Config {
	tpl := make([]Template, 0, 10)
	for id := int64(1000); id <= 1009; id++ {
		tpl = append(tpl, Template{MMSID: id, Slides: 8, Encoding: id == 1009})
	}
	return Config{
		Accounts: []Account{{
			APIKey: "sim-api-key",
			From:   map[string]string{"60856": "1"},
			CountryDefaults: map[string]string{
				"1": "60856", "44": "60060", "49": "37272", "33": "36180", "61": "1987", "86": "1069", "353": "51210",
			},
			Templates: tpl,
		}},
		PostbackDelay:       Duration(50 * time.Millisecond),
		RetryInterval:       Duration(5 * time.Minute),
		MaxRetries:          5,
		PostbackTimeout:     Duration(10 * time.Second),
		PostbackConcurrency: 4,
		Seed:                1,
		Scenarios:           Scenarios{Default: ScenarioDelivered},
	}
}

// Load reads a JSON config; fields it leaves out keep Default's values.
func Load(path string) (Config, error) {
	cfg := Default()
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, err
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, cfg.check()
}

func (c *Config) check() error {
	if len(c.Accounts) == 0 {
		return fmt.Errorf("config: no accounts")
	}
	for _, f := range c.Faults {
		if _, ok := faultKinds[f.Kind]; !ok {
			return fmt.Errorf("config: unknown fault kind %q", f.Kind)
		}
	}
	if err := c.Scenarios.check(); err != nil {
		return err
	}
	for _, o := range c.Outages {
		if !outageKinds[o.Kind] || o.Length <= 0 {
			return fmt.Errorf("config: outage %+v: want kind E503, http503, reset or refused and a length", o)
		}
	}
	for _, r := range []float64{c.OmitClientReferenceRate, c.EarlyPostbackRate, c.DuplicateRate, c.ReorderRate} {
		if r < 0 || r > 1 {
			return fmt.Errorf("config: rate %v outside 0-1", r)
		}
	}
	if c.RateLimit < 0 || c.MinInterval < 0 {
		return fmt.Errorf("config: rateLimit and minInterval must not be negative")
	}
	if c.MaxRetries < 0 {
		return fmt.Errorf("config: maxRetries < 0")
	}
	return nil
}

// Duration is a time.Duration written as "5m" or "150ms" in JSON.
type Duration time.Duration

// MarshalJSON writes "1.5s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "1.5s" or a number of milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		ms, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return fmt.Errorf("duration %s: want \"1s\" or milliseconds", b)
		}
		*d = Duration(ms * float64(time.Millisecond))
		return nil
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}
