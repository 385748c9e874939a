package receipt

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
)

// MaxDelay is SQS's longest DelaySeconds.
const MaxDelay = 15 * time.Minute

// Check is one message on RECEIPT_QUEUE_URL.
type Check struct {
	ID         string `json:"id"`
	TrackingID string `json:"trackingId"` // "" when Skycore gave none (NO_TRACKINGID)
	Due        string `json:"due"`        // RFC 3339 with milliseconds, UTC
}

// Decode reads a check; the id and a parseable due are required.
func Decode(body []byte) (Check, time.Time, error) {
	var c Check
	if err := json.Unmarshal(body, &c); err != nil {
		return c, time.Time{}, err
	}
	if c.ID == "" {
		return c, time.Time{}, errors.New("no id")
	}
	due, err := time.Parse(time.RFC3339Nano, c.Due)
	if err != nil {
		return c, time.Time{}, err
	}
	return c, due, nil
}

type sender interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Scheduler puts checks on the receipt queue (the sender's and the
// postback function's side).
type Scheduler struct {
	api      sender
	queueURL string
	now      func() time.Time
}

// NewScheduler returns a scheduler to queueURL (RECEIPT_QUEUE_URL).
func NewScheduler(api sender, queueURL string) *Scheduler {
	return &Scheduler{api: api, queueURL: queueURL, now: time.Now}
}

// Schedule asks for a check of id at due: one message delayed by
// min(due-now, 15 min); the check itself waits out the rest. A failure is
// *apperr.Error UNAVAILABLE (retry).
func (s *Scheduler) Schedule(ctx context.Context, id, trackingID string, due time.Time) error {
	body, err := json.Marshal(Check{ID: id, TrackingID: trackingID, Due: delivery.Stamp(due)})
	if err != nil {
		return &apperr.Error{Code: apperr.CodeInternal, Class: apperr.Permanent, Op: "receipt.Schedule", Message: "encode check", Err: err}
	}
	// Rounded up: a check that arrives early is put back once more (a
	// receive and a ChangeMessageVisibility).
	delay := min(max(due.Sub(s.now())+time.Second-1, 0), MaxDelay)
	_, err = s.api.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: aws.String(s.queueURL), MessageBody: aws.String(string(body)), DelaySeconds: int32(delay / time.Second),
	})
	if err != nil {
		return &apperr.Error{Code: apperr.CodeUnavailable, Class: apperr.Retry, Op: "receipt.Schedule",
			Message: "cannot schedule the receipt check", Err: err}
	}
	return nil
}
