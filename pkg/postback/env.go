package postback

import (
	"errors"
	"time"

	"github.com/mmsgate/mmsgate/pkg/receipt"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// EnvVars lists every variable the postback function reads. It reads the
// token's secret only (POSTBACK_SECRET_ID), never the API key's.
var EnvVars = []string{"POSTBACK_SECRET_ID", "MESSAGES_TABLE", "MESSAGES_TTL_DAYS", "DELIVERY_EVENTS_QUEUE_URL", "LOG_LEVEL",
	"RECEIPT_WINDOW", "RECEIPT_QUEUE_URL"} // receipt checks (issue 15, pkg/receipt)

// Env is the function's configuration.
type Env struct {
	SecretID, Table, EventsQueueURL string
	TTL                             time.Duration
	// ReceiptWindow and ReceiptQueueURL are RECEIPT_WINDOW (0 off, and 0
	// without a queue) and RECEIPT_QUEUE_URL: the receipt check of an
	// acceptance a postback proves (receipt.WithChecks).
	ReceiptWindow   time.Duration
	ReceiptQueueURL string
}

// FromEnv reads and checks the environment. POSTBACK_SECRET_ID is
// required: SKYCORE_SECRET_ID names the API key's secret, which the
// internet-facing postback function must not read (contract §4).
func FromEnv(getenv func(string) string) (Env, error) {
	e := Env{SecretID: getenv("POSTBACK_SECRET_ID"), Table: getenv("MESSAGES_TABLE"), EventsQueueURL: getenv("DELIVERY_EVENTS_QUEUE_URL")}
	var errs []error
	for _, v := range [][2]string{{"POSTBACK_SECRET_ID", e.SecretID}, {"MESSAGES_TABLE", e.Table}, {"DELIVERY_EVENTS_QUEUE_URL", e.EventsQueueURL}} {
		if v[1] == "" {
			errs = append(errs, errors.New(v[0]+" is required"))
		}
	}
	ttl, err := store.TTLFromDays(getenv("MESSAGES_TTL_DAYS"))
	if err != nil {
		errs = append(errs, err)
	}
	e.TTL = ttl
	if e.ReceiptWindow, e.ReceiptQueueURL, err = receipt.Window(getenv); err != nil {
		errs = append(errs, err)
	}
	if err := receipt.CheckRetention(e.TTL, e.ReceiptWindow); err != nil {
		errs = append(errs, err)
	}
	return e, errors.Join(errs...)
}
