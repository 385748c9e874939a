package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/mmsgate/mmsgate/pkg/sendreq"
)

// CancelBody is the body that cancels id on a send queue,
// {"id": "...", "cancel": true} and nothing else (docs/request.md,
// "Cancel"). An id the sender could not read is refused here.
func CancelBody(id string) (string, error) {
	if !sendreq.ValidID(id) {
		return "", fmt.Errorf("%w: cancel: id %q: 1-64 characters of A-Z a-z 0-9 . _ : -", ErrInvalid, id)
	}
	b, err := json.Marshal(struct {
		ID     string `json:"id"`
		Cancel bool   `json:"cancel"`
	}{id, true})
	return string(b), err
}

// Cancel puts a cancel of id on the send queue. It wins when no Skycore
// call of id has started and none may have reached Skycore, also before
// the request itself is enqueued: id then ends with the event canceled.
// Otherwise it changes nothing, and id's own terminal event (accepted,
// rejected or expired) is the outcome. A nil error means only that the
// cancel is queued; sending it again is harmless.
func (c *Client) Cancel(ctx context.Context, id string) error {
	body, err := CancelBody(id)
	if err != nil {
		return err
	}
	if _, err := c.api.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(c.queueURL), MessageBody: aws.String(body)}); err != nil {
		return fmt.Errorf("cancel %q: %w", id, err)
	}
	return nil
}
