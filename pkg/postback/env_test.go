package postback

import (
	"slices"
	"testing"
)

// TestFromEnv is bug 2 of issue 13: the postback function names the
// token's secret (POSTBACK_SECRET_ID), never the API key's.
func TestFromEnv(t *testing.T) {
	base := map[string]string{"MESSAGES_TABLE": "t", "DELIVERY_EVENTS_QUEUE_URL": "q"}
	tests := []struct {
		name         string
		env          map[string]string
		wantSecret   string
		wantErr      bool
		wantWarnings int
	}{
		{"token secret", map[string]string{"POSTBACK_SECRET_ID": "mmsgate/prod/postback"}, "mmsgate/prod/postback", false, 0},
		{"token secret wins over the key's", map[string]string{"POSTBACK_SECRET_ID": "tok", "SKYCORE_SECRET_ID": "key"}, "tok", false, 0},
		{"deprecated fallback, with a warning", map[string]string{"SKYCORE_SECRET_ID": "mmsgate/skycore"}, "mmsgate/skycore", false, 1},
		{"neither", map[string]string{}, "", true, 0},
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
			if e.SecretID != tt.wantSecret || len(e.Warnings) != tt.wantWarnings {
				t.Errorf("FromEnv() = %q, %q; want %q with %d warnings", e.SecretID, e.Warnings, tt.wantSecret, tt.wantWarnings)
			}
		})
	}
	if !slices.Contains(EnvVars, "POSTBACK_SECRET_ID") || slices.Contains(EnvVars, "SKYCORE_SECRET_ID") {
		t.Errorf("EnvVars = %v, want POSTBACK_SECRET_ID and not SKYCORE_SECRET_ID", EnvVars)
	}
}
