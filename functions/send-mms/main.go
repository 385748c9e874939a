// Command send-mms is the sender Lambda: SQS batches of send requests →
// Skycore sendSavedMMS → delivery events. It only wires; the logic is in
// pkg/sender.
package main

import (
	"context"
	"errors"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/mmsgate/mmsgate/pkg/applog"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/emf"
	"github.com/mmsgate/mmsgate/pkg/outbox"
	"github.com/mmsgate/mmsgate/pkg/receipt"
	"github.com/mmsgate/mmsgate/pkg/sdkhttp"
	"github.com/mmsgate/mmsgate/pkg/secret"
	"github.com/mmsgate/mmsgate/pkg/sender"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
	"github.com/mmsgate/mmsgate/pkg/skycore"
	"github.com/mmsgate/mmsgate/pkg/store"
	"github.com/mmsgate/mmsgate/pkg/throttle"
)

func main() {
	log := applog.New(os.Stdout)
	env, err := sender.FromEnv(os.Getenv)
	rateLimit, rerr := throttle.RateFromEnv(os.Getenv)
	if err = errors.Join(err, rerr); err != nil {
		log.Error("bad configuration", "err", err)
		os.Exit(1)
	}
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRetryMaxAttempts(5))
	if err != nil {
		log.Error("AWS configuration", "err", err)
		os.Exit(1)
	}
	cfg.HTTPClient = sdkhttp.Wrap(cfg.HTTPClient) // without the race that loses answers (pkg/sdkhttp)
	// Events and receipt checks go through the outbox: one
	// SendMessageBatch for a batch's records instead of one call each.
	// (Queue's sends, hand-offs and DLQ moves, carry whole request bodies
	// and are rare: sent at once.)
	queue := sqs.NewFromConfig(cfg)
	box := outbox.New(queue).WithBus(eventbridge.NewFromConfig(cfg)) // the bus's PutEvents batched too
	db := dynamodb.NewFromConfig(cfg)
	var api interface {
		SendSavedMMS(ctx context.Context, apiKey string, r *sendreq.Request) (*skycore.Response, error)
	} = skycore.New(env.APIURL, skycore.WithTimeout(env.CallTimeout))
	metrics := emf.New(os.Stdout, "mmsgate", map[string]string{"Function": "send-mms"})
	var limiter *throttle.Reporter
	if rateLimit > 0 {
		// SKYCORE_RATE_LIMIT: every call takes a slot of the account's
		// shared throughput first, in its lane (pkg/throttle).
		l := throttle.New(db, env.Table, throttle.Options{Limit: rateLimit})
		api = throttle.NewGate(api, l)
		limiter = throttle.NewReporter(l, metrics)
	}
	h := sender.NewHandler(env.Config, sender.Deps{
		Keys:     secret.New(secretsmanager.NewFromConfig(cfg), env.SecretID, secret.DefaultTTL, secret.APIKey),
		Skycore:  api,
		Store:    store.New(db, env.Table, env.TTL),
		Events:   delivery.NewPublisher(box, env.EventsQueueURL).WithBus(box, os.Getenv(delivery.BusEnv)),
		Queue:    queue,
		Receipts: receipt.NewScheduler(box, env.ReceiptQueueURL), // off when env.ReceiptWindow is 0
		Outbox:   box,
		Log:      log,
		Metrics:  metrics,
	})
	// A batch comes from one event source mapping, so from one queue: its
	// lane (docs/request.md).
	lanes := throttle.NewLanes(os.Getenv("BULK_SEND_QUEUE_URL"))
	lambda.Start(func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		if len(ev.Records) > 0 {
			ctx = throttle.WithLane(ctx, lanes.Of(ev.Records[0].EventSourceARN))
		}
		resp, err := h.Handle(ctx, ev)
		if limiter != nil {
			limiter.Report()
		}
		return resp, err
	})
}
