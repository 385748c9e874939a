package localenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/pkg/delivery"
)

// The EventBridge output under Options.EventBus (moto serves EventBridge):
// a bus, and one application's rule on it whose target is a queue, as an
// application subscribes (docs/events.md).
const (
	EventBus = "mmsgate-apps"
	BusRule  = "mmsgate-app-events"
	BusQueue = "mmsgate-app-events" // the rule's target
)

// EventBridge returns a client for moto's EventBridge.
func (e *Env) EventBridge() *eventbridge.Client {
	return eventbridge.NewFromConfig(e.AWS, func(o *eventbridge.Options) { o.BaseEndpoint = aws.String(e.Moto.URL) })
}

// createBus creates the bus, the rule (every mmsgate event) and its target
// queue; it runs again harmlessly on a moto that has them (make dev PERSIST=1).
func (e *Env) createBus(ctx context.Context) error {
	if e.Moto == nil {
		return errors.New("localenv: EventBus needs moto (not InProcess)")
	}
	url, err := CreateBus(ctx, e.SQSClient(), e.EventBridge(), EventBus)
	if err != nil {
		return err
	}
	e.EventBusName, e.BusQueueURL = EventBus, url
	return nil
}

// CreateBus creates the bus busName, as a deployer does before setting the
// template's EventBusName (docs/deploy.md), and one application's rule on
// it for every mmsgate event with the queue BusQueue as its target, as an
// application subscribes (docs/events.md); it returns the queue's URL. It
// runs again harmlessly where they exist.
func CreateBus(ctx context.Context, q *sqs.Client, eb *eventbridge.Client, busName string) (string, error) {
	out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(BusQueue)})
	if err != nil {
		return "", fmt.Errorf("create queue %s: %w", BusQueue, err)
	}
	attrs, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return "", err
	}
	if _, err := eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(busName)}); err != nil {
		var exists *ebtypes.ResourceAlreadyExistsException
		if !errors.As(err, &exists) {
			return "", fmt.Errorf("create event bus %s: %w", busName, err)
		}
	}
	pattern := fmt.Sprintf(`{"source":[%q]}`, delivery.BusSource)
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(BusRule), EventBusName: aws.String(busName),
		EventPattern: aws.String(pattern)}); err != nil {
		return "", fmt.Errorf("put rule %s: %w", BusRule, err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(BusRule), EventBusName: aws.String(busName),
		Targets: []ebtypes.Target{{Id: aws.String("queue"), Arn: aws.String(attrs.Attributes["QueueArn"])}}}); err != nil {
		return "", fmt.Errorf("put targets %s: %w", BusRule, err)
	}
	return *out.QueueUrl, nil
}

// BusMessage is one message of the rule's target queue: EventBridge's
// envelope around a delivery event.
type BusMessage struct {
	Source     string         `json:"source"`
	DetailType string         `json:"detail-type"`
	Event      delivery.Event `json:"detail"`
}

// ParseBusMessage reads a message the rule put on its target queue.
func ParseBusMessage(body string) (BusMessage, error) {
	var m BusMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		return m, fmt.Errorf("bus message %.200q: %w", body, err)
	}
	return m, nil
}

// busEnviron is what a function needs to put events on the bus.
func (e *Env) busEnviron() []string {
	if e.EventBusName == "" {
		return nil
	}
	return []string{"AWS_ENDPOINT_URL_EVENTBRIDGE=" + e.Moto.URL, delivery.BusEnv + "=" + e.EventBusName}
}
