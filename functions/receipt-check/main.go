// Command receipt-check is the receipt-check Lambda: delayed checks on the
// internal receipt queue → one `unconfirmed` delivery event for an
// accepted request with no final receipt within RECEIPT_WINDOW. It only
// wires; the logic is in pkg/receipt.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/mmsgate/mmsgate/pkg/applog"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/emf"
	"github.com/mmsgate/mmsgate/pkg/receipt"
	"github.com/mmsgate/mmsgate/pkg/sdkhttp"
	"github.com/mmsgate/mmsgate/pkg/store"
)

func main() {
	log := applog.New(os.Stdout)
	env, err := receipt.FromEnv(os.Getenv)
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
	h := receipt.NewHandler(receipt.Config{QueueURL: env.QueueURL, Window: env.Window}, receipt.Deps{
		Store:   store.New(dynamodb.NewFromConfig(cfg), env.Table, env.TTL),
		Events:  delivery.NewPublisher(queue, env.EventsQueueURL).WithBus(eventbridge.NewFromConfig(cfg), os.Getenv(delivery.BusEnv)),
		Queue:   queue,
		Log:     log,
		Metrics: emf.New(os.Stdout, "mmsgate", map[string]string{"Function": "receipt-check"}),
	})
	lambda.Start(h.Handle)
}
