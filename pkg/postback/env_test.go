package postback

import (
	"slices"
	"testing"
)

// TestFromEnv guards a fixed bug: the postback function names the
// token's secret (POSTBACK_SECRET_ID), never the API key's.
func TestFromEnv(t *testing.T) {
	base := map[string]string{"MESSAGES_TABLE": "t", "DELIVERY_EVENTS_QUEUE_URL": "q"}
	tests := []struct {
		name       string
		env        map[string]string
		wantSecret string
		wantErr    bool
	}{
		{"token secret", map[string]string{"POSTBACK_SECRET_ID": "mmsgate/prod/postback"}, "mmsgate/prod/postback", false},
		{"the key's secret is never read", map[string]string{"POSTBACK_SECRET_ID": "tok", "SKYCORE_SECRET_ID": "key"}, "tok", false},
		{"the key's secret alone is refused", map[string]string{"SKYCORE_SECRET_ID": "mmsgate/skycore"}, "", true},
		{"neither", map[string]string{}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			e, err := FromEnv(func(k string) string { return env[k] })
			if (err != nil) != tt.wantErr {
				t.Fatalf("FromEnv() error = %v, want error %v", err, tt.wantErr)
			}
			if e.SecretID != tt.wantSecret {
				t.Errorf("FromEnv() secret = %q, want %q", e.SecretID, tt.wantSecret)
			}
		})
	}
	if !slices.Contains(EnvVars, "POSTBACK_SECRET_ID") || slices.Contains(EnvVars, "SKYCORE_SECRET_ID") {
		t.Errorf("EnvVars = %v, want POSTBACK_SECRET_ID and not SKYCORE_SECRET_ID", EnvVars)
	}
}

// TestFromEnvRefusesRetentionBelowWindow: MESSAGES_TTL_DAYS below
// RECEIPT_WINDOW is refused at start (the receipt check would find the
// record gone).
func TestFromEnvRefusesRetentionBelowWindow(t *testing.T) {
	env := map[string]string{"POSTBACK_SECRET_ID": "tok", "MESSAGES_TABLE": "t", "DELIVERY_EVENTS_QUEUE_URL": "q",
		"RECEIPT_QUEUE_URL": "r", "RECEIPT_WINDOW": "48h", "MESSAGES_TTL_DAYS": "1"}
	if _, err := FromEnv(func(k string) string { return env[k] }); err == nil {
		t.Error("FromEnv with a 1-day TTL and a 48h window: no error")
	}
	env["MESSAGES_TTL_DAYS"] = "3"
	if _, err := FromEnv(func(k string) string { return env[k] }); err != nil {
		t.Errorf("FromEnv with a 3-day TTL and a 48h window: %v", err)
	}
}
