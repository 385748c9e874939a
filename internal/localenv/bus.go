package localenv

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

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
	q, err := e.SQSClient().CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(BusQueue)})
	if err != nil {
		return fmt.Errorf("create queue %s: %w", BusQueue, err)
	}
	arn, err := e.QueueARN(ctx, *q.QueueUrl)
	if err != nil {
		return err
	}
	eb := e.EventBridge()
	if _, err := eb.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(EventBus)}); err != nil {
		var exists *ebtypes.ResourceAlreadyExistsException
		if !errors.As(err, &exists) {
			return fmt.Errorf("create event bus %s: %w", EventBus, err)
		}
	}
	pattern := fmt.Sprintf(`{"source":[%q]}`, delivery.BusSource)
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(BusRule), EventBusName: aws.String(EventBus),
		EventPattern: aws.String(pattern)}); err != nil {
		return fmt.Errorf("put rule %s: %w", BusRule, err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(BusRule), EventBusName: aws.String(EventBus),
		Targets: []ebtypes.Target{{Id: aws.String("queue"), Arn: aws.String(arn)}}}); err != nil {
		return fmt.Errorf("put targets %s: %w", BusRule, err)
	}
	e.EventBusName, e.BusQueueURL = EventBus, *q.QueueUrl
	return nil
}

// busEnviron is what a function needs to put events on the bus.
func (e *Env) busEnviron() []string {
	if e.EventBusName == "" {
		return nil
	}
	return []string{"AWS_ENDPOINT_URL_EVENTBRIDGE=" + e.Moto.URL, delivery.BusEnv + "=" + e.EventBusName}
}
