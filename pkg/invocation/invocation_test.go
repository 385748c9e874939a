package invocation

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

type recorder struct{ secs []int32 }

func (r *recorder) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	r.secs = append(r.secs, in.VisibilityTimeout)
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

// TestSetVisibility: rounded up to seconds, at least one, never beyond
// the caller's cap nor SQS's limit; nothing for a local record.
func TestSetVisibility(t *testing.T) {
	ctx := context.Background()
	r := &recorder{}
	for _, c := range []struct {
		d, cap time.Duration
		want   int32
	}{
		{1500 * time.Millisecond, time.Hour, 2},
		{0, time.Hour, 1},
		{2 * time.Hour, time.Hour, 3600},
		{24 * time.Hour, 24 * time.Hour, 43200},
	} {
		r.secs = nil
		if err := SetVisibility(ctx, r, "q", "h", c.d, c.cap); err != nil || len(r.secs) != 1 || r.secs[0] != c.want {
			t.Errorf("SetVisibility(%v, cap %v) = %v, %v; want %d s", c.d, c.cap, r.secs, err, c.want)
		}
	}
	r.secs = nil
	SetVisibility(ctx, r, "", "h", time.Second, time.Hour)
	SetVisibility(ctx, r, "q", "", time.Second, time.Hour)
	if len(r.secs) != 0 {
		t.Errorf("a record without queue URL or handle was changed: %v", r.secs)
	}
	if ID(ctx) != "local" {
		t.Errorf("ID outside Lambda = %q", ID(ctx))
	}
}
