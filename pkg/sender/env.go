package sender

import (
	"fmt"
	"slices"
	"time"

	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/env"
	"github.com/mmsgate/mmsgate/pkg/invocation"
	"github.com/mmsgate/mmsgate/pkg/receipt"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
	"github.com/mmsgate/mmsgate/pkg/throttle"
)

// EnvVars lists every variable the send-mms function reads (docs/configuration.md,
// plus MESSAGES_TTL_DAYS); template.yaml must declare each. A package's own
// variables come from its list.
var EnvVars = slices.Concat([]string{
	"SKYCORE_API_URL", "SKYCORE_SECRET_ID", "SKYCORE_DEFAULT_FROM", "SKYCORE_ENFORCE_CAMPAIGN_CHECK", "SKYCORE_TIMEOUT",
	"SEND_CONCURRENCY", "SEND_RATE_PER_SECOND", "MESSAGES_TABLE", "MESSAGES_TTL_DAYS", "DELIVERY_EVENTS_QUEUE_URL",
	"SEND_QUEUE_URL", "DEAD_LETTER_QUEUE_URL", "LOG_LEVEL", "SEND_RETRY_WINDOW", "SEND_INDOUBT_WINDOW",
	"SEND_BACKOFF_BASE", "SEND_BACKOFF_MAX", "SUPPRESS_CODES", "SUPPRESS_TTL",
	"BULK_DEAD_LETTER_QUEUE_URL", // the bulk lane's DLQ moves
	delivery.BusEnv,              // events also on a bus
},
	receipt.SchedulerEnvVars, // receipt checks
	throttle.EnvVars,         // the lanes and the shared limit
)

// DefaultSuppressCodes are SUPPRESS_CODES' default: the codes that say the
// number itself is refused (docs/codes.md).
var DefaultSuppressCodes = []string{"E110", "E114"}

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
// The defaults are the handler's (NewHandler applies the same ones to a
// zero Config).
func FromEnv(getenv func(string) string) (Env, error) {
	r := env.New(getenv)
	var e Env
	r.Required(env.Var{Name: "SKYCORE_SECRET_ID", To: &e.SecretID}, env.Var{Name: "MESSAGES_TABLE", To: &e.Table},
		env.Var{Name: "DELIVERY_EVENTS_QUEUE_URL", To: &e.EventsQueueURL})
	e.APIURL = r.String("SKYCORE_API_URL", skycore.DefaultEndpoint)
	e.Policy.DefaultFrom = r.Get("SKYCORE_DEFAULT_FROM")
	e.SendQueueURL = r.Get("SEND_QUEUE_URL")
	e.DLQURL = r.Get("DEAD_LETTER_QUEUE_URL")
	e.BulkSendQueueURL = r.Get("BULK_SEND_QUEUE_URL")
	e.BulkDLQURL = r.String("BULK_DEAD_LETTER_QUEUE_URL", e.DLQURL)
	e.Policy.EnforceCampaignCheck = r.Bool("SKYCORE_ENFORCE_CAMPAIGN_CHECK", false)
	e.CallTimeout = r.Duration("SKYCORE_TIMEOUT", skycore.DefaultTimeout, false)
	e.RetryWindow = r.Duration("SEND_RETRY_WINDOW", DefaultRetryWindow, false)
	e.InDoubtWindow = r.Duration("SEND_INDOUBT_WINDOW", DefaultInDoubtWindow, true)
	e.SuppressCodes = r.List("SUPPRESS_CODES", DefaultSuppressCodes)
	e.SuppressTTL = r.Duration("SUPPRESS_TTL", DefaultSuppressTTL, false)
	// The retry back-off: first delay, doubled per receive up to the cap.
	e.BaseBackoff = r.Duration("SEND_BACKOFF_BASE", DefaultBaseBackoff, false)
	e.MaxBackoff = r.Duration("SEND_BACKOFF_MAX", DefaultMaxBackoff, false)
	if e.MaxBackoff > invocation.VisibilityLimit || e.BaseBackoff > e.MaxBackoff {
		r.Fail(fmt.Errorf("SEND_BACKOFF_BASE=%s, SEND_BACKOFF_MAX=%s: want base ≤ max ≤ 12h (SQS's longest visibility)", e.BaseBackoff, e.MaxBackoff))
	}
	e.Concurrency = r.Int("SEND_CONCURRENCY", DefaultConcurrency, 1, 1000)
	e.RatePerSecond = r.Float("SEND_RATE_PER_SECOND", 0)
	// Receipt checks (pkg/receipt): RECEIPT_WINDOW, off without RECEIPT_QUEUE_URL.
	var err error
	e.ReceiptWindow, e.ReceiptQueueURL, err = receipt.Window(getenv)
	r.Fail(err)
	e.TTL, err = store.TTLFromDays(getenv("MESSAGES_TTL_DAYS"))
	r.Fail(err)
	// A record gone before its receipt check would make the check wrong.
	r.Fail(receipt.CheckRetention(e.TTL, e.ReceiptWindow))
	return e, r.Err()
}
