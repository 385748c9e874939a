package sender

// Sizes: every path that puts a request's body on a queue again (the
// hand-off, the move to the DLQ, a redrive) adds message attributes, and
// SQS counts them in a message's size. A body is accepted only when the
// largest of those still fits, so that none of them can fail for size.

import (
	"crypto/sha256"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// SQSMessageLimit is the largest SQS message, body and attributes (names,
// types and values) together: 256 KiB, the queues' MaximumMessageSize.
const SQSMessageLimit = 256 * 1024

const (
	// MaxHandoffPayload bounds the hand-off attribute's JSON: a longer one
	// loses its tracking id first (handOff).
	MaxHandoffPayload = 4096
	maxReasonBytes    = 1000 // the DLQ's error attribute
	maxMessageIDBytes = 128  // the DLQ's originalMessageId (SQS ids are 36)
	stringType        = len("String")
)

// HandoffOverhead is the most the signed hand-off attributes add.
const HandoffOverhead = len(HandoffAttr) + stringType + MaxHandoffPayload +
	len(HandoffMACAttr) + stringType + 2*sha256.Size

// DeadLetterOverhead is the most a move to the DLQ adds: the reason, the
// original message id and, for a hand-off, its attributes kept.
const DeadLetterOverhead = len("error") + stringType + maxReasonBytes +
	len("originalMessageId") + stringType + maxMessageIDBytes + HandoffOverhead

// MaxBodyBytes is the largest request body accepted (docs/codes.md): the
// move to the DLQ, the larger overhead, still fits in SQSMessageLimit.
const MaxBodyBytes = SQSMessageLimit - max(DeadLetterOverhead, HandoffOverhead)

// messageSize is what SQS counts of a message.
func messageSize(body string, attrs map[string]sqstypes.MessageAttributeValue) int {
	n := len(body)
	for k, v := range attrs {
		n += len(k) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue)) + len(v.BinaryValue)
	}
	return n
}

// checkBodySize refuses a body that leaves no room for the attributes of
// a hand-off or a move to the DLQ.
func checkBodySize(body string) error {
	if len(body) <= MaxBodyBytes {
		return nil
	}
	return &apperr.Error{Code: "E100", Class: apperr.Permanent, Field: "body",
		Message: fmt.Sprintf("the request is %d bytes, over %d: it must leave room in an SQS message (256 KiB) for mmsgate's own attributes", len(body), MaxBodyBytes)}
}

// fitDeadLetter shortens the reason of a move to the DLQ until the message
// fits (a body over MaxBodyBytes: a malformed one), and drops it, with the
// original message id, when nothing of it fits.
func fitDeadLetter(body string, attrs map[string]sqstypes.MessageAttributeValue) {
	over := messageSize(body, attrs) - SQSMessageLimit
	if over <= 0 {
		return
	}
	if e, ok := attrs["error"]; ok && len(aws.ToString(e.StringValue)) > over {
		attrs["error"] = sqstypes.MessageAttributeValue{DataType: e.DataType, StringValue: aws.String(truncate(aws.ToString(e.StringValue), len(aws.ToString(e.StringValue))-over))}
		return
	}
	delete(attrs, "error")
	delete(attrs, "originalMessageId")
}
