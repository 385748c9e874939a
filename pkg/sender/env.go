package sender

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mmsgate/mmsgate/pkg/receipt"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// EnvVars lists every variable the send-mms function reads (docs/configuration.md,
// plus MESSAGES_TTL_DAYS); template.yaml must declare each.
var EnvVars = []string{
	"SKYCORE_API_URL", "SKYCORE_SECRET_ID", "SKYCORE_DEFAULT_FROM", "SKYCORE_ENFORCE_CAMPAIGN_CHECK", "SKYCORE_TIMEOUT",
	"SEND_CONCURRENCY", "SEND_RATE_PER_SECOND", "MESSAGES_TABLE", "MESSAGES_TTL_DAYS", "DELIVERY_EVENTS_QUEUE_URL",
	"SEND_QUEUE_URL", "DEAD_LETTER_QUEUE_URL", "LOG_LEVEL", "SEND_RETRY_WINDOW", "SEND_INDOUBT_WINDOW",
	"SEND_BACKOFF_BASE", "SEND_BACKOFF_MAX", "SUPPRESS_CODES", "SUPPRESS_TTL",
	"RECEIPT_WINDOW", "RECEIPT_QUEUE_URL", // receipt checks (pkg/receipt)
}

// Env is the function's configuration read from the environment.
type Env struct {
	Config
	APIURL         string
	SecretID       string
	Table          string
	TTL            time.Duration
	EventsQueueURL string
	// ReceiptQueueURL is RECEIPT_QUEUE_URL, where receipt checks are
	// scheduled (Config.ReceiptWindow is 0 without it).
	ReceiptQueueURL string
}

// FromEnv reads and checks the environment; every problem is reported.
func FromEnv(getenv func(string) string) (Env, error) {
	e := Env{
		APIURL:         or(getenv("SKYCORE_API_URL"), skycore.DefaultEndpoint),
		SecretID:       getenv("SKYCORE_SECRET_ID"),
		Table:          getenv("MESSAGES_TABLE"),
		EventsQueueURL: getenv("DELIVERY_EVENTS_QUEUE_URL"),
		TTL:            store.DefaultTTL,
	}
	e.Policy.DefaultFrom = getenv("SKYCORE_DEFAULT_FROM")
	e.SendQueueURL = getenv("SEND_QUEUE_URL")
	e.DLQURL = getenv("DEAD_LETTER_QUEUE_URL")
	var errs []error
	for _, v := range [][2]string{{"SKYCORE_SECRET_ID", e.SecretID}, {"MESSAGES_TABLE", e.Table}, {"DELIVERY_EVENTS_QUEUE_URL", e.EventsQueueURL}} {
		if v[1] == "" { // in a fixed order: the same environment, the same message
			errs = append(errs, errors.New(v[0]+" is required"))
		}
	}
	if v := getenv("SKYCORE_ENFORCE_CAMPAIGN_CHECK"); v != "" {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			errs = append(errs, fmt.Errorf("SKYCORE_ENFORCE_CAMPAIGN_CHECK=%q: want true or false", v))
		}
		e.Policy.EnforceCampaignCheck = b
	}
	e.CallTimeout = skycore.DefaultTimeout
	if v := getenv("SKYCORE_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("SKYCORE_TIMEOUT=%q: want a duration such as 20s", v))
		}
		e.CallTimeout = d
	}
	e.RetryWindow, errs = duration(getenv, "SEND_RETRY_WINDOW", DefaultRetryWindow, false, errs)
	e.InDoubtWindow, errs = duration(getenv, "SEND_INDOUBT_WINDOW", DefaultInDoubtWindow, true, errs)
	e.SuppressCodes = []string{"E110", "E114"}
	if v, ok := lookup(getenv, "SUPPRESS_CODES"); ok {
		e.SuppressCodes = nil
		for _, c := range strings.Split(v, ",") {
			if c = strings.ToUpper(strings.TrimSpace(c)); c != "" {
				e.SuppressCodes = append(e.SuppressCodes, c)
			}
		}
	}
	e.SuppressTTL, errs = duration(getenv, "SUPPRESS_TTL", DefaultSuppressTTL, false, errs)
	// The retry back-off: first delay, doubled per receive up to the cap.
	e.BaseBackoff, errs = duration(getenv, "SEND_BACKOFF_BASE", DefaultBaseBackoff, false, errs)
	e.MaxBackoff, errs = duration(getenv, "SEND_BACKOFF_MAX", DefaultMaxBackoff, false, errs)
	if e.MaxBackoff > 12*time.Hour || e.BaseBackoff > e.MaxBackoff {
		errs = append(errs, fmt.Errorf("SEND_BACKOFF_BASE=%s, SEND_BACKOFF_MAX=%s: want base ≤ max ≤ 12h (SQS's longest visibility)", e.BaseBackoff, e.MaxBackoff))
	}
	e.Concurrency = 10
	if v := getenv("SEND_CONCURRENCY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			errs = append(errs, fmt.Errorf("SEND_CONCURRENCY=%q: want 1-1000", v))
		}
		e.Concurrency = n
	}
	if v := getenv("SEND_RATE_PER_SECOND"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 {
			errs = append(errs, fmt.Errorf("SEND_RATE_PER_SECOND=%q: want a number ≥ 0", v))
		}
		e.RatePerSecond = r
	}
	// Receipt checks (pkg/receipt): RECEIPT_WINDOW, off without RECEIPT_QUEUE_URL.
	var err error
	if e.ReceiptWindow, e.ReceiptQueueURL, err = receipt.Window(getenv); err != nil {
		errs = append(errs, err)
	}
	ttl, err := store.TTLFromDays(getenv("MESSAGES_TTL_DAYS"))
	if err != nil {
		errs = append(errs, err)
	}
	e.TTL = ttl
	return e, errors.Join(errs...)
}

// lookup tells an unset variable from one set to "" ("none"): SUPPRESS_CODES
// set to "-" or "none" turns suppression off.
func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	if v == "" {
		return "", false
	}
	if v == "-" || strings.EqualFold(v, "none") {
		return "", true
	}
	return v, true
}

// duration reads a Go duration; zeroOK allows "0" (off).
func duration(getenv func(string) string, name string, def time.Duration, zeroOK bool, errs []error) (time.Duration, []error) {
	v := getenv(name)
	if v == "" {
		return def, errs
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || (d == 0 && !zeroOK) {
		return def, append(errs, fmt.Errorf("%s=%q: want a duration such as 24h or 15m", name, v))
	}
	return d, errs
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
