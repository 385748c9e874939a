// Package sim is a Skycore simulator: the v1 XML API's sendSavedMMS as the
// vendor page describes it, the delivery postbacks of skycore-notes.md §5
// with Skycore's retry rules, fault injection, and inspection endpoints
// under /_sim/. It parses requests into a generic element tree and shares
// no code with pkg/skycore, so an encoder bug shows up here as an error.
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
}

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
}

// Template is a saved MMS.
type Template struct {
	MMSID    int64 `json:"mmsId"`
	Slides   int   `json:"slides"`
	Encoding bool  `json:"encoding,omitempty"` // still encoding: E626
}

// Default is what `skycore-sim` runs with no config file (contract §7).
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
