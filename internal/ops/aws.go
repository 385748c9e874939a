package ops

import (
	"context"
	"errors"
	"net/url"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/mmsgate/mmsgate/pkg/sdkhttp"
)

// Global holds the flags every subcommand takes.
type Global struct {
	Table    string // DynamoDB table (MESSAGES_TABLE)
	Region   string // "" lets the SDK decide (AWS_REGION, the profile)
	Endpoint string // one endpoint for every AWS service (local stand-ins)
	JSON     bool
}

// table is the part of DynamoDB the subcommands use: the store's reads and
// writes, and Scan for the suppression list.
type table interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	scanner
}

var _ table = (*dynamodb.Client)(nil)

// Clients are the AWS services a subcommand talks to.
type Clients struct {
	DB  table
	SQS queues
}

// LocalRegion is the region assumed with --endpoint when none is set (the
// local stand-ins accept any).
const LocalRegion = "us-east-1"

// ConnectAWS builds the SDK clients: the usual credential chain and
// region, AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> (read by the SDK
// itself), and g.Endpoint over them all. No call is made here.
func ConnectAWS(ctx context.Context, g Global) (*Clients, error) {
	var opts []func(*config.LoadOptions) error
	if g.Region != "" {
		opts = append(opts, config.WithRegion(g.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, err
	}
	cfg.HTTPClient = sdkhttp.Wrap(cfg.HTTPClient) // without the race that loses answers (pkg/sdkhttp)
	if cfg.Region == "" {
		local := g.Endpoint != "" || cfg.BaseEndpoint != nil || os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") != "" || os.Getenv("AWS_ENDPOINT_URL_SQS") != ""
		if !local {
			return nil, errors.New("no AWS region: pass --region or set AWS_REGION")
		}
		cfg.Region = LocalRegion
	}
	if g.Endpoint != "" {
		cfg.BaseEndpoint = aws.String(g.Endpoint)
	}
	return &Clients{DB: dynamodb.NewFromConfig(cfg), SQS: sqs.NewFromConfig(cfg)}, nil
}

// regionOfQueue is the region in an AWS queue URL
// (https://sqs.<region>.amazonaws.com/<account>/<name>), "" otherwise.
func regionOfQueue(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	parts := strings.Split(p.Hostname(), ".")
	if len(parts) >= 4 && parts[0] == "sqs" && parts[len(parts)-2] == "amazonaws" {
		return parts[1]
	}
	return ""
}
