package sender

import (
	"strings"
	"testing"
)

// TestFromEnvRetention: a record kept shorter than RECEIPT_WINDOW (plus the
// margin a late check needs) is refused at start; long enough is taken,
// and so is any TTL when receipt checks are off.
func TestFromEnvRetention(t *testing.T) {
	base := map[string]string{"SKYCORE_SECRET_ID": "s", "MESSAGES_TABLE": "t", "DELIVERY_EVENTS_QUEUE_URL": "q",
		"RECEIPT_QUEUE_URL": "rq", "RECEIPT_WINDOW": "48h"}
	for _, tt := range []struct {
		name, ttlDays, window, queue string
		wantErr                      bool
	}{
		{"one day under a 48h window", "1", "48h", "rq", true},
		{"two days, no margin", "2", "48h", "rq", true},
		{"three days", "3", "48h", "rq", false},
		{"checks off", "1", "48h", "", false},
		{"window 0", "1", "0", "rq", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"MESSAGES_TTL_DAYS": tt.ttlDays, "RECEIPT_WINDOW": tt.window, "RECEIPT_QUEUE_URL": tt.queue}
			_, err := FromEnv(func(k string) string {
				if v, ok := env[k]; ok {
					return v
				}
				return base[k]
			})
			if tt.wantErr != (err != nil) || err != nil && !strings.Contains(err.Error(), "MESSAGES_TTL_DAYS") {
				t.Errorf("FromEnv: %v, want error %v naming MESSAGES_TTL_DAYS", err, tt.wantErr)
			}
		})
	}
}
