package postback

import (
	"errors"
	"time"

	"github.com/mmsgate/mmsgate/pkg/store"
)

// EnvVars lists every variable the postback function reads.
var EnvVars = []string{"SKYCORE_SECRET_ID", "MESSAGES_TABLE", "MESSAGES_TTL_DAYS", "DELIVERY_EVENTS_QUEUE_URL", "LOG_LEVEL"}

// Env is the function's configuration.
type Env struct {
	SecretID, Table, EventsQueueURL string
	TTL                             time.Duration
}

// FromEnv reads and checks the environment.
func FromEnv(getenv func(string) string) (Env, error) {
	e := Env{SecretID: getenv("SKYCORE_SECRET_ID"), Table: getenv("MESSAGES_TABLE"), EventsQueueURL: getenv("DELIVERY_EVENTS_QUEUE_URL")}
	var errs []error
	for _, v := range [][2]string{{"SKYCORE_SECRET_ID", e.SecretID}, {"MESSAGES_TABLE", e.Table}, {"DELIVERY_EVENTS_QUEUE_URL", e.EventsQueueURL}} {
		if v[1] == "" {
			errs = append(errs, errors.New(v[0]+" is required"))
		}
	}
	ttl, err := store.TTLFromDays(getenv("MESSAGES_TTL_DAYS"))
	if err != nil {
		errs = append(errs, err)
	}
	e.TTL = ttl
	return e, errors.Join(errs...)
}
