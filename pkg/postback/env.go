package postback

import (
	"slices"
	"time"

	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/env"
	"github.com/mmsgate/mmsgate/pkg/keyword"
	"github.com/mmsgate/mmsgate/pkg/receipt"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// EnvVars lists every variable the postback function reads. It reads the
// token's secret only (POSTBACK_SECRET_ID), never the API key's.
var EnvVars = slices.Concat([]string{"POSTBACK_SECRET_ID", "MESSAGES_TABLE", "MESSAGES_TTL_DAYS", "DELIVERY_EVENTS_QUEUE_URL", "LOG_LEVEL",
	"OPTOUT_KEYWORDS", "OPTIN_KEYWORDS", // inbound messages (pkg/keyword)
	delivery.BusEnv}, // events also on a bus
	receipt.SchedulerEnvVars) // receipt checks

// Env is the function's configuration.
type Env struct {
	SecretID, Table, EventsQueueURL string
	TTL                             time.Duration
	// ReceiptWindow and ReceiptQueueURL are RECEIPT_WINDOW (0 off, and 0
	// without a queue) and RECEIPT_QUEUE_URL: the receipt check of an
	// acceptance a postback proves (Deps.Receipts).
	ReceiptWindow   time.Duration
	ReceiptQueueURL string
	// Keywords are OPTOUT_KEYWORDS and OPTIN_KEYWORDS (pkg/keyword).
	Keywords keyword.Lists
}

// FromEnv reads and checks the environment. POSTBACK_SECRET_ID is
// required: SKYCORE_SECRET_ID names the API key's secret, which the
// internet-facing postback function must not read (docs/secrets.md).
func FromEnv(getenv func(string) string) (Env, error) {
	r := env.New(getenv)
	var e Env
	r.Required(env.Var{Name: "POSTBACK_SECRET_ID", To: &e.SecretID}, env.Var{Name: "MESSAGES_TABLE", To: &e.Table},
		env.Var{Name: "DELIVERY_EVENTS_QUEUE_URL", To: &e.EventsQueueURL})
	var err error
	e.TTL, err = store.TTLFromDays(getenv("MESSAGES_TTL_DAYS"))
	r.Fail(err)
	e.ReceiptWindow, e.ReceiptQueueURL, err = receipt.Window(getenv)
	r.Fail(err)
	r.Fail(receipt.CheckRetention(e.TTL, e.ReceiptWindow))
	e.Keywords, err = keyword.FromEnv(getenv)
	r.Fail(err)
	return e, r.Err()
}
