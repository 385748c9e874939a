package schedule

import "errors"

// EnvVars lists every variable the schedule-sweep function reads;
// template.yaml must declare each.
var EnvVars = []string{"MESSAGES_TABLE", "SEND_QUEUE_URL", "BULK_SEND_QUEUE_URL", "LOG_LEVEL"}

// Env is the schedule-sweep function's configuration.
type Env struct {
	Table string
	Config
}

// FromEnv reads and checks the schedule-sweep function's environment.
// BULK_SEND_QUEUE_URL is optional: without it a bulk request goes back to
// SEND_QUEUE_URL (a stack without the bulk lane).
func FromEnv(getenv func(string) string) (Env, error) {
	e := Env{Table: getenv("MESSAGES_TABLE"), Config: Config{SendQueueURL: getenv("SEND_QUEUE_URL"),
		BulkSendQueueURL: getenv("BULK_SEND_QUEUE_URL")}}
	var errs []error
	for _, v := range [][2]string{{"MESSAGES_TABLE", e.Table}, {"SEND_QUEUE_URL", e.SendQueueURL}} {
		if v[1] == "" {
			errs = append(errs, errors.New(v[0]+" is required"))
		}
	}
	return e, errors.Join(errs...)
}
