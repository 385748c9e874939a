// Command schedule-sweep is the schedule-sweep Lambda: run every minute,
// it puts the scheduled requests that are due back on their send queue.
// It only wires; the logic and its design are in pkg/schedule.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/mmsgate/mmsgate/pkg/applog"
	"github.com/mmsgate/mmsgate/pkg/emf"
	"github.com/mmsgate/mmsgate/pkg/schedule"
	"github.com/mmsgate/mmsgate/pkg/sdkhttp"
	"github.com/mmsgate/mmsgate/pkg/store"
)

func main() {
	log := applog.New(os.Stdout)
	env, err := schedule.FromEnv(os.Getenv)
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
	db := dynamodb.NewFromConfig(cfg)
	sw := schedule.New(env.Config, schedule.Deps{
		Store:   store.New(db, env.Table, 0),
		Index:   db,
		Queue:   sqs.NewFromConfig(cfg),
		Log:     log,
		Metrics: emf.New(os.Stdout, "mmsgate", map[string]string{"Function": "schedule-sweep"}),
	})
	lambda.Start(sw.Handle)
}
