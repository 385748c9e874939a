// Package invocation is what an SQS-triggered function's invocation needs
// of Lambda and SQS, written once for the sender and the receipt check:
// its id, and how long a record it hands back stays hidden.
package invocation

import (
	"context"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// VisibilityLimit is SQS's limit on a message's visibility, counted from
// its receive: a ChangeMessageVisibility beyond it is refused whole, not
// cut. Each caller keeps a margin for the time between the receive and its
// call (MaxVisibility).
const VisibilityLimit = 12 * time.Hour

// ID is the invocation's request id ("local" outside Lambda).
func ID(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		return lc.AwsRequestID
	}
	return "local"
}

type changer interface {
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// SetVisibility hides the record with receiptHandle for d, rounded up to
// whole seconds, at least one and at most maxVisibility; nothing without a
// queue URL or a receipt handle (a local invocation).
func SetVisibility(ctx context.Context, q changer, queueURL, receiptHandle string, d, maxVisibility time.Duration) error {
	if queueURL == "" || receiptHandle == "" {
		return nil
	}
	d = min(max(d, time.Second), maxVisibility, VisibilityLimit)
	_, err := q.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(queueURL), ReceiptHandle: aws.String(receiptHandle), VisibilityTimeout: int32((d + time.Second - 1) / time.Second),
	})
	return err
}
