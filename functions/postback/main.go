// Command postback is the postback Lambda behind API Gateway: Skycore's
// delivery postbacks → delivery events. It only wires; the logic is in
// pkg/postback.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/mmsgate/mmsgate/pkg/applog"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/emf"
	"github.com/mmsgate/mmsgate/pkg/postback"
	"github.com/mmsgate/mmsgate/pkg/receipt"
	"github.com/mmsgate/mmsgate/pkg/sdkhttp"
	"github.com/mmsgate/mmsgate/pkg/secret"
	"github.com/mmsgate/mmsgate/pkg/store"
)

func main() {
	log := applog.New(os.Stdout)
	env, err := postback.FromEnv(os.Getenv)
	if err != nil {
		log.Error("bad configuration", "err", err)
		os.Exit(1)
	}
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRetryMaxAttempts(5))
	if err != nil {
		log.Error("AWS configuration", "err", err)
		os.Exit(1)
	}
	cfg.HTTPClient = sdkhttp.Wrap(cfg.HTTPClient) // without the race that loses answers (pkg/sdkhttp)
	queue := sqs.NewFromConfig(cfg)
	h := postback.NewHandler(postback.Deps{
		Tokens: secret.New(secretsmanager.NewFromConfig(cfg), env.SecretID, secret.DefaultTTL, secret.PostbackToken),
		Store:  store.New(dynamodb.NewFromConfig(cfg), env.Table, env.TTL),
		Events: delivery.NewPublisher(queue, env.EventsQueueURL).WithBus(eventbridge.NewFromConfig(cfg), os.Getenv(delivery.BusEnv)),
		// Schedules receipt checks before accepted events (off when env.ReceiptWindow is 0).
		Receipts:      receipt.NewScheduler(queue, env.ReceiptQueueURL),
		ReceiptWindow: env.ReceiptWindow,
		Keywords:      env.Keywords,
		Log:           log,
		Metrics:       emf.New(os.Stdout, "mmsgate", map[string]string{"Function": "postback"}),
	})
	lambda.Start(h.Handle)
}
