package receipt

import (
	"fmt"
	"time"

	"github.com/mmsgate/mmsgate/pkg/env"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// Window defaults and limits (RECEIPT_WINDOW).
const (
	DefaultWindow = 24 * time.Hour
	// MaxWindow keeps every check well inside the receipt queue's 14 days
	// of retention.
	MaxWindow = 7 * 24 * time.Hour
)

// EnvVars lists every variable the receipt-check function reads;
// template.yaml must declare each.
var EnvVars = []string{"MESSAGES_TABLE", "MESSAGES_TTL_DAYS", "DELIVERY_EVENTS_QUEUE_URL", "RECEIPT_QUEUE_URL", "LOG_LEVEL",
	"RECEIPT_WINDOW", // a check is due RECEIPT_WINDOW after the record's acceptance
	"EVENT_BUS_NAME"} // events also on a bus (pkg/delivery)

// SchedulerEnvVars are the variables the sender and the postback function
// read to schedule checks (Window).
var SchedulerEnvVars = []string{"RECEIPT_WINDOW", "RECEIPT_QUEUE_URL"}

// Env is the receipt-check function's configuration.
type Env struct {
	Table, EventsQueueURL, QueueURL string
	TTL                             time.Duration
	Window                          time.Duration // RECEIPT_WINDOW (0: off; the handler then takes DefaultWindow for leftover checks)
}

// FromEnv reads and checks the receipt-check function's environment;
// every problem is reported.
func FromEnv(getenv func(string) string) (Env, error) {
	r := env.New(getenv)
	var e Env
	r.Required(env.Var{Name: "MESSAGES_TABLE", To: &e.Table}, env.Var{Name: "DELIVERY_EVENTS_QUEUE_URL", To: &e.EventsQueueURL},
		env.Var{Name: "RECEIPT_QUEUE_URL", To: &e.QueueURL})
	var err error
	e.TTL, err = store.TTLFromDays(getenv("MESSAGES_TTL_DAYS"))
	r.Fail(err)
	e.Window, _, err = Window(getenv)
	r.Fail(err)
	r.Fail(CheckRetention(e.TTL, e.Window))
	return e, r.Err()
}

// RetentionMargin is how much longer than RECEIPT_WINDOW a record must be
// kept: a check runs seconds to minutes after its due, and it reads the
// record.
const RetentionMargin = time.Hour

// CheckRetention refuses MESSAGES_TTL_DAYS (ttl) shorter than RECEIPT_WINDOW
// plus RetentionMargin: the record would run out before its check, which
// could then neither find the request nor see its receipts. Every function
// that reads both variables calls it at start; template.yaml's rule
// ReceiptWindowWithinRetention refuses the same stacks.
func CheckRetention(ttl, window time.Duration) error {
	if window > 0 && ttl < window+RetentionMargin {
		return fmt.Errorf("MESSAGES_TTL_DAYS (%s) must keep a record at least RECEIPT_WINDOW (%s) plus %s", ttl, window, RetentionMargin)
	}
	return nil
}

// Window reads the scheduling side's RECEIPT_WINDOW (default 24h, "0"
// off, at most 7 days) and RECEIPT_QUEUE_URL. The window is 0 (off) when
// the queue URL is not set, so that a stack without the receipt queue
// (an older local setup) sends as before.
func Window(getenv func(string) string) (window time.Duration, queueURL string, err error) {
	window, queueURL = DefaultWindow, getenv("RECEIPT_QUEUE_URL")
	if v := getenv("RECEIPT_WINDOW"); v != "" {
		d, perr := time.ParseDuration(v)
		if perr != nil || d < 0 || d > MaxWindow {
			return 0, queueURL, fmt.Errorf("RECEIPT_WINDOW=%q: want 0 (off) or a duration such as 24h, at most %s", v, MaxWindow)
		}
		window = d
	}
	if queueURL == "" {
		window = 0
	}
	return window, queueURL, nil
}
