package delivery

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// The EventBridge output (docs/events.md): with EVENT_BUS_NAME set, every
// event also goes on that bus, so that each application subscribes with a
// rule of its own instead of sharing the one events queue.
const (
	BusEnv    = "EVENT_BUS_NAME"
	BusSource = "mmsgate" // an event's source; its detail-type is its kind
)

type putter interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// WithBus makes p also put every event on the bus busName; "" leaves p
// as it is (no bus).
func (p *Publisher) WithBus(api putter, busName string) *Publisher {
	if busName != "" {
		p.bus, p.busName = api, busName
	}
	return p
}

// putOnBus puts the event whose JSON is body on the bus (before the queue,
// Publish). Its failure is the publish's: the caller publishes again.
// Through an outbox (pkg/outbox) the put is batched with the invocation's
// other events, and an entry EventBridge refuses is put again there first.
func (p *Publisher) putOnBus(ctx context.Context, kind string, body []byte) error {
	out, err := p.bus.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
		EventBusName: aws.String(p.busName), Source: aws.String(BusSource),
		DetailType: aws.String(kind), Detail: aws.String(string(body)),
	}}})
	if err == nil && out.FailedEntryCount > 0 {
		err = fmt.Errorf("%d entry refused", out.FailedEntryCount)
		if len(out.Entries) > 0 {
			err = fmt.Errorf("entry refused: %s %s", aws.ToString(out.Entries[0].ErrorCode), aws.ToString(out.Entries[0].ErrorMessage))
		}
	}
	if err != nil {
		return &apperr.Error{Code: apperr.CodeUnavailable, Class: apperr.Retry, Op: "delivery.Publish",
			Message: "cannot put the delivery event on the event bus", Err: err}
	}
	return nil
}
