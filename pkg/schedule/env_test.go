package schedule

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestFromEnv: the sweeper knows the bulk lane's queue when the stack has
// one (a bulk request scheduled on it goes back there, not to the
// transactional queue), and the required variables are required.
func TestFromEnv(t *testing.T) {
	for _, tt := range []struct {
		name    string
		vars    map[string]string
		want    Env
		wantErr bool
	}{
		{name: "both lanes", vars: map[string]string{"MESSAGES_TABLE": "t", "SEND_QUEUE_URL": "https://q/send", "BULK_SEND_QUEUE_URL": "https://q/bulk"},
			want: Env{Table: "t", Config: Config{SendQueueURL: "https://q/send", BulkSendQueueURL: "https://q/bulk"}}},
		{name: "no bulk lane", vars: map[string]string{"MESSAGES_TABLE": "t", "SEND_QUEUE_URL": "https://q/send"},
			want: Env{Table: "t", Config: Config{SendQueueURL: "https://q/send"}}},
		{name: "no send queue", vars: map[string]string{"MESSAGES_TABLE": "t", "BULK_SEND_QUEUE_URL": "https://q/bulk"}, wantErr: true},
		{name: "no table", vars: map[string]string{"SEND_QUEUE_URL": "https://q/send"}, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromEnv(func(k string) string { return tt.vars[k] })
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("FromEnv (-want +got):\n%s", diff)
			}
		})
	}
}
