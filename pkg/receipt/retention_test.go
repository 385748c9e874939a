package receipt

import (
	"testing"
	"time"
)

// TestRetentionBelowWindowRefused: a record kept shorter than the receipt
// window (plus the margin a late check needs) is refused at start, on the
// receipt-check function's side and by CheckRetention for the others.
func TestRetentionBelowWindowRefused(t *testing.T) {
	base := map[string]string{"MESSAGES_TABLE": "t", "DELIVERY_EVENTS_QUEUE_URL": "e", "RECEIPT_QUEUE_URL": "r"}
	tests := []struct {
		ttlDays, window string
		wantErr         bool
	}{
		{"1", "24h", true},
		{"1", "", true}, // the default window, 24h
		{"1", "23h", false},
		{"1", "1381m", true},
		{"1", "1380m", false},
		{"2", "24h", false},
		{"7", "168h", true},
		{"8", "168h", false},
		{"1", "0", false},   // checks off
		{"", "168h", false}, // the default 30 days
	}
	for _, tt := range tests {
		t.Run(tt.ttlDays+"d/"+tt.window, func(t *testing.T) {
			env := map[string]string{"MESSAGES_TTL_DAYS": tt.ttlDays, "RECEIPT_WINDOW": tt.window}
			for k, v := range base {
				env[k] = v
			}
			_, err := FromEnv(func(k string) string { return env[k] })
			if (err != nil) != tt.wantErr {
				t.Errorf("FromEnv = %v; want an error: %v", err, tt.wantErr)
			}
		})
	}
	if err := CheckRetention(24*time.Hour, 24*time.Hour); err == nil {
		t.Error("CheckRetention(1 day, 24h) = nil; want refused")
	}
}
