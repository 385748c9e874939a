package receipt

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// TestSchedule: the body is {id, trackingId, due} and the delay is the
// time left, at most SQS's 15 minutes; a failed send is a retryable error.
func TestSchedule(t *testing.T) {
	now := time.Date(2026, 11, 24, 21, 2, 12, 31e6, time.UTC)
	tests := map[string]struct {
		id, trk   string
		due       time.Time
		wantBody  string
		wantDelay int32
	}{
		"a day":             {"a", "T-a", now.Add(24 * time.Hour), `{"id":"a","trackingId":"T-a","due":"2026-11-25T21:02:12.031Z"}`, 900},
		"two minutes":       {"b", "T-b", now.Add(2 * time.Minute), `{"id":"b","trackingId":"T-b","due":"2026-11-24T21:04:12.031Z"}`, 120},
		"no tracking id":    {"c", "", now.Add(time.Hour), `{"id":"c","trackingId":"","due":"2026-11-24T22:02:12.031Z"}`, 900},
		"already past due":  {"d", "T-d", now.Add(-time.Second), `{"id":"d","trackingId":"T-d","due":"2026-11-24T21:02:11.031Z"}`, 0},
		"rounded up":        {"e", "T-e", now.Add(2500 * time.Millisecond), `{"id":"e","trackingId":"T-e","due":"2026-11-24T21:02:14.531Z"}`, 3},
		"just under 15 min": {"f", "T-f", now.Add(MaxDelay - time.Millisecond), `{"id":"f","trackingId":"T-f","due":"2026-11-24T21:17:12.030Z"}`, 900},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			q := &fakeQueue{now: func() time.Time { return now }}
			s := NewScheduler(q, "url")
			s.now = q.now
			if err := s.Schedule(context.Background(), tt.id, tt.trk, tt.due); err != nil {
				t.Fatal(err)
			}
			in := q.sent[0]
			if got := aws.ToString(in.MessageBody); got != tt.wantBody {
				t.Errorf("body = %s, want %s", got, tt.wantBody)
			}
			if in.DelaySeconds != tt.wantDelay || aws.ToString(in.QueueUrl) != "url" {
				t.Errorf("DelaySeconds = %d to %s, want %d to url", in.DelaySeconds, aws.ToString(in.QueueUrl), tt.wantDelay)
			}
			c, due, err := Decode([]byte(tt.wantBody))
			if err != nil || !due.Equal(tt.due) || c.ID != tt.id {
				t.Errorf("Decode = %+v, %v, %v", c, due, err)
			}
		})
	}
	q := &fakeQueue{now: time.Now, failSend: func() error { return errors.New("down") }}
	if err := NewScheduler(q, "url").Schedule(context.Background(), "e", "T-e", time.Now()); apperr.ClassOf(err) != apperr.Retry {
		t.Errorf("Schedule on a failing queue = %v, want a retryable error", err)
	}
}

// TestWindow: RECEIPT_WINDOW and RECEIPT_QUEUE_URL as the sender and the
// postback function read them.
func TestWindow(t *testing.T) {
	tests := map[string]struct {
		env     map[string]string
		want    time.Duration
		wantErr bool
	}{
		"defaults":           {env: map[string]string{"RECEIPT_QUEUE_URL": "q"}, want: DefaultWindow},
		"set":                {env: map[string]string{"RECEIPT_QUEUE_URL": "q", "RECEIPT_WINDOW": "90m"}, want: 90 * time.Minute},
		"0 is off":           {env: map[string]string{"RECEIPT_QUEUE_URL": "q", "RECEIPT_WINDOW": "0"}, want: 0},
		"no queue: off":      {env: map[string]string{"RECEIPT_WINDOW": "24h"}, want: 0},
		"the longest":        {env: map[string]string{"RECEIPT_QUEUE_URL": "q", "RECEIPT_WINDOW": "168h"}, want: MaxWindow},
		"longer than 7 days": {env: map[string]string{"RECEIPT_QUEUE_URL": "q", "RECEIPT_WINDOW": "169h"}, wantErr: true},
		"negative":           {env: map[string]string{"RECEIPT_QUEUE_URL": "q", "RECEIPT_WINDOW": "-1h"}, wantErr: true},
		"not a duration":     {env: map[string]string{"RECEIPT_QUEUE_URL": "q", "RECEIPT_WINDOW": "1d"}, wantErr: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, _, err := Window(func(k string) string { return tt.env[k] })
			if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
				t.Errorf("Window = %v, %v; want %v (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestFromEnv: the receipt-check function's required variables.
func TestFromEnv(t *testing.T) {
	full := map[string]string{"MESSAGES_TABLE": "t", "DELIVERY_EVENTS_QUEUE_URL": "e", "RECEIPT_QUEUE_URL": "r", "MESSAGES_TTL_DAYS": "2"}
	e, err := FromEnv(func(k string) string { return full[k] })
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Env{Table: "t", EventsQueueURL: "e", QueueURL: "r", TTL: 48 * time.Hour, Window: DefaultWindow}, e); diff != "" {
		t.Errorf("FromEnv (-want +got):\n%s", diff)
	}
	for _, v := range []string{"MESSAGES_TABLE", "DELIVERY_EVENTS_QUEUE_URL", "RECEIPT_QUEUE_URL"} {
		_, err := FromEnv(func(k string) string {
			if k == v {
				return ""
			}
			return full[k]
		})
		if err == nil {
			t.Errorf("FromEnv without %s: no error", v)
		}
	}
}
