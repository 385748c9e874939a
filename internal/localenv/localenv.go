// Package localenv starts the local stand-ins for AWS that mmsgate's tests,
// `make run` and `make dev` use, and builds real SDK clients pointed at
// them: dynalite (behind a fault proxy for throttling) for DynamoDB, and
// moto's server for SQS and Secrets Manager (both SQS protocols, batches,
// SQS's validation). The tests and the soak reach moto through fault
// proxies (refused sends, a service down or slow, call counts, recorded
// calls); `make run` and `make dev` reach it directly. Under `go test
// -short`, which starts no service (InProcess), the in-process fakesqs and
// fakesecrets stand in for moto, behind the same proxies.
package localenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/mmsgate/mmsgate/internal/dynalite"
	"github.com/mmsgate/mmsgate/internal/fakesecrets"
	"github.com/mmsgate/mmsgate/internal/fakesqs"
	"github.com/mmsgate/mmsgate/internal/faultproxy"
	"github.com/mmsgate/mmsgate/internal/moto"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/sdkhttp"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// Names of the local resources.
const (
	Table     = "mmsgate-messages"
	SendQueue = "mmsgate-send"
	SendDLQ   = "mmsgate-send-dlq"
	// BulkSendQueue is the bulk lane (docs/request.md), redriving to
	// BulkSendDLQ as the send queue does to its DLQ.
	BulkSendQueue = "mmsgate-send-bulk"
	BulkSendDLQ   = "mmsgate-send-bulk-dlq"
	EventQueue    = "mmsgate-delivery-events"
	// ReceiptQueue is the internal queue of delayed receipt checks.
	ReceiptQueue = "mmsgate-receipt-check"
	SecretID     = "mmsgate/skycore"
	Region       = "us-east-1"
)

// Options of Start.
type Options struct {
	APIKey        string        // the secret's api_key (default sim-api-key)
	PostbackToken string        // the secret's postback_token (default local-postback-token)
	Visibility    time.Duration // the send queue's visibility timeout (default 30 s)
	MaxReceive    int           // the send queue's redrive maxReceiveCount (default 5)
	// Moto serves SQS and Secrets Manager from one moto_server port with
	// no fault proxy in front (make run, make dev).
	Moto bool
	// Ports fixes the ports (0: a free one) and the bind address.
	Ports Ports
	// DynamoPath keeps dynalite's data in this folder across restarts.
	DynamoPath string
	// MotoLog is where moto_server's request log goes (default: discarded).
	MotoLog string
	// NoDynamo starts no DynamoDB (no Node needed): the caller brings its
	// own, such as internal/memdb. Env.Proxy is nil.
	NoDynamo bool
	// InProcess serves SQS and Secrets Manager from the in-process fakesqs
	// and fakesecrets instead of moto (no Python needed): for `go test
	// -short`, which starts no service (TestShortNeedsOnlyGo), and for the
	// soak, whose timing windows moto's load-dependent latency breaks.
	InProcess bool
	// EventBus creates an EventBridge bus with a rule whose target is a
	// queue (bus.go) and gives the functions EVENT_BUS_NAME; not with
	// InProcess.
	EventBus bool
	// Servers lends dynalite and moto_server from a pool that outlives
	// the Env (a test binary's); not with DynamoPath or Moto.
	Servers *Servers
}

// Env is a running set of stand-ins.
type Env struct {
	Dynalite *dynalite.Server
	Proxy    *faultproxy.Proxy
	// SQSFaults and SecretsFaults are the fault proxies in front of SQS
	// and Secrets Manager (refused sends, a service down or slow, call
	// counts, recorded calls); nil with Options.Moto.
	SQSFaults, SecretsFaults *faultproxy.Proxy
	Moto                     *moto.Server // but with InProcess
	// With InProcess (go test -short), the in-process stand-ins.
	fakeSQS     *fakesqs.Server
	fakeSecrets *fakesecrets.Server
	DynamoURL   string // through the proxy
	SQSURL      string
	SecretURL   string

	// servers and lent: where Dynalite and Moto are borrowed from
	// (Options.Servers), and given back to on Close.
	servers *Servers
	lent    *lent

	SendQueueURL, DLQURL, EventsQueueURL, ReceiptQueueURL string
	BulkSendQueueURL, BulkDLQURL                          string
	// EventBusName and BusQueueURL: the bus and its rule's target queue
	// (Options.EventBus); "" without.
	EventBusName, BusQueueURL string

	AWS aws.Config
}

// Ports fixes the stand-ins' ports (for `sam local`, whose env.json names
// them); Bind is the address to listen on (default 127.0.0.1; 0.0.0.0 lets
// Docker containers on Linux reach them). With Options.Moto, SQS and Secrets
// Manager share one port (SQS's).
type Ports struct {
	Dynamo, SQS, Secrets int
	Bind                 string
}

// Start starts everything (on free loopback ports unless o.Ports says
// otherwise) and creates the table, the queues and the secret.
func Start(ctx context.Context, o Options) (*Env, error) {
	if o.Ports != (Ports{}) {
		p := o.Ports
		return start(ctx, o, &p)
	}
	return start(ctx, o, nil)
}

func start(ctx context.Context, o Options, ports *Ports) (*Env, error) {
	if o.APIKey == "" {
		o.APIKey = "sim-api-key"
	}
	if o.PostbackToken == "" {
		o.PostbackToken = "local-postback-token"
	}
	if o.Visibility == 0 {
		o.Visibility = 30 * time.Second
	}
	if o.MaxReceive == 0 {
		o.MaxReceive = 5
	}
	e := &Env{}
	var err error
	addr := func(port int) string { return "127.0.0.1:0" }
	if ports != nil {
		bind := ports.Bind
		if bind == "" {
			bind = "127.0.0.1"
		}
		addr = func(port int) string { return fmt.Sprintf("%s:%d", bind, port) }
	}
	e.AWS, err = config.LoadDefaultConfig(ctx, config.WithRegion(Region),
		config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local", Source: "localenv"}, nil
		})))
	if err != nil {
		return nil, err
	}
	e.AWS.HTTPClient = sdkhttp.Wrap(e.AWS.HTTPClient) // without the race that loses answers (pkg/sdkhttp)
	if o.Servers != nil && o.DynamoPath == "" && !o.Moto {
		e.servers, e.lent = o.Servers, o.Servers.take()
	}
	// dynalite listens on a free port; the fault proxy in front of it is
	// what clients use, on the fixed port when one is asked for.
	if !o.NoDynamo {
		if err := e.startDynalite(ctx, o); err != nil {
			e.Close()
			return nil, err
		}
		if e.Proxy, e.DynamoURL, err = faultproxy.Front(e.Dynalite.URL, addr(portOf(ports, "dynamo"))); err != nil {
			e.Close()
			return nil, err
		}
	}
	switch {
	case o.Moto:
		// make run, make dev: moto on the asked port, nothing in front.
		mo := moto.Options{Port: portOf(ports, "sqs"), Log: o.MotoLog}
		if ports != nil {
			mo.Bind = ports.Bind
		}
		if e.Moto, err = moto.Start(ctx, mo); err != nil {
			e.Close()
			return nil, err
		}
		e.SQSURL, e.SecretURL = e.Moto.URL, e.Moto.URL
	case o.InProcess:
		// go test -short starts no service: our in-process stand-ins
		// (internal/moto's tests hold them to moto's behaviour).
		e.fakeSQS, e.fakeSecrets = fakesqs.New(), fakesecrets.New()
		if e.SQSFaults, e.SQSURL, err = proxied(e.fakeSQS.Start, addr(portOf(ports, "sqs"))); err != nil {
			e.Close()
			return nil, err
		}
		if e.SecretsFaults, e.SecretURL, err = proxied(e.fakeSecrets.Start, addr(portOf(ports, "secrets"))); err != nil {
			e.Close()
			return nil, err
		}
	default:
		// The tests and the soak: moto, behind one fault proxy for SQS and
		// one for Secrets Manager.
		if err := e.startMoto(ctx, o); err != nil {
			e.Close()
			return nil, err
		}
		if e.SQSFaults, e.SQSURL, err = faultproxy.Front(e.Moto.URL, addr(portOf(ports, "sqs"))); err != nil {
			e.Close()
			return nil, err
		}
		if e.SecretsFaults, e.SecretURL, err = faultproxy.Front(e.Moto.URL, addr(portOf(ports, "secrets"))); err != nil {
			e.Close()
			return nil, err
		}
	}
	if err := e.createResources(ctx, o); err != nil {
		e.Close()
		return nil, err
	}
	if o.EventBus {
		if err := e.createBus(ctx); err != nil {
			e.Close()
			return nil, err
		}
	}
	if o.NoDynamo {
		return e, nil
	}
	if err := store.CreateTableWithDueIndex(ctx, e.DynamoDB(), Table); err != nil && !tableExists(err) {
		e.Close()
		return nil, fmt.Errorf("create table: %w", err)
	}
	return e, nil
}

// proxied starts an in-process stand-in on a free loopback port and a
// fault proxy in front of it on addr.
func proxied(start func(addr string) (string, error), addr string) (*faultproxy.Proxy, string, error) {
	target, err := start("127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	return faultproxy.Front(target, addr)
}

func portOf(p *Ports, which string) int {
	if p == nil {
		return 0
	}
	return map[string]int{"dynamo": p.Dynamo, "sqs": p.SQS, "secrets": p.Secrets}[which]
}

// createSecret creates the Skycore secret, or sets it when it exists.
func (e *Env) createSecret(ctx context.Context, o Options) error {
	if e.fakeSecrets != nil {
		e.PutSecret(o.APIKey, o.PostbackToken)
		return nil
	}
	b, _ := json.Marshal(map[string]string{"api_key": o.APIKey, "postback_token": o.PostbackToken})
	_, err := e.SecretsManager().CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(SecretID), SecretString: aws.String(string(b))})
	var exists *smtypes.ResourceExistsException
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("create secret: %w", err)
	}
	if err != nil {
		e.PutSecret(o.APIKey, o.PostbackToken)
	}
	return nil
}

// PutSecret sets the Skycore secret (docs/secrets.md): locally one secret
// holds both keys, named by SKYCORE_SECRET_ID and POSTBACK_SECRET_ID.
func (e *Env) PutSecret(apiKey, token string) {
	b, _ := json.Marshal(map[string]string{"api_key": apiKey, "postback_token": token})
	if e.fakeSecrets != nil {
		e.fakeSecrets.Put(SecretID, string(b))
		return
	}
	e.SecretsManager().PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(SecretID), SecretString: aws.String(string(b))})
}

// Close stops everything.
func (e *Env) Close() {
	for _, p := range []*faultproxy.Proxy{e.SQSFaults, e.SecretsFaults} {
		if p != nil {
			p.Close()
		}
	}
	if e.fakeSecrets != nil {
		e.fakeSecrets.Close()
	}
	if e.fakeSQS != nil {
		e.fakeSQS.Close()
	}
	if e.Proxy != nil {
		e.Proxy.Close()
	}
	if e.lent != nil {
		e.servers.give(e.lent)
		return
	}
	if e.Moto != nil {
		e.Moto.Close()
	}
	e.Dynalite.Close()
}

// startDynalite starts dynalite, or borrows it (Options.Servers).
func (e *Env) startDynalite(ctx context.Context, o Options) error {
	if e.lent != nil && e.lent.dyn != nil {
		e.Dynalite = e.lent.dyn
		return nil
	}
	d, err := dynalite.StartWith(ctx, dynalite.Options{Path: o.DynamoPath})
	if err != nil {
		return err
	}
	e.Dynalite = d
	if e.lent != nil {
		e.lent.dyn = d
	}
	return nil
}

// startMoto starts moto_server for the tests, or borrows it
// (Options.Servers).
func (e *Env) startMoto(ctx context.Context, o Options) error {
	if e.lent != nil && e.lent.moto != nil {
		e.Moto = e.lent.moto
		return nil
	}
	m, err := moto.Start(ctx, moto.Options{Log: o.MotoLog})
	if err != nil {
		return err
	}
	e.Moto = m
	if e.lent != nil {
		e.lent.moto = m
	}
	return nil
}

// DynamoDB returns a client for the table (through the fault proxy).
func (e *Env) DynamoDB(opts ...func(*dynamodb.Options)) *dynamodb.Client {
	return dynamodb.NewFromConfig(e.AWS, append([]func(*dynamodb.Options){func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(e.DynamoURL) }}, opts...)...)
}

// DynamoDBDirect returns a client straight to dynalite, without the fault
// proxy's hop (benchmarks).
func (e *Env) DynamoDBDirect() *dynamodb.Client {
	return dynamodb.NewFromConfig(e.AWS, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(e.Dynalite.URL) })
}

// SQSClient returns a client for the queues.
func (e *Env) SQSClient(opts ...func(*sqs.Options)) *sqs.Client {
	return sqs.NewFromConfig(e.AWS, append([]func(*sqs.Options){func(o *sqs.Options) { o.BaseEndpoint = aws.String(e.SQSURL) }}, opts...)...)
}

// SecretsManager returns a client for the secret.
func (e *Env) SecretsManager(opts ...func(*secretsmanager.Options)) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(e.AWS, append([]func(*secretsmanager.Options){func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(e.SecretURL) }}, opts...)...)
}

// Environ is the environment a function process needs (docs/configuration.md) to
// use these stand-ins through its own config.LoadDefaultConfig.
func (e *Env) Environ() []string {
	return append([]string{
		"AWS_REGION=" + Region, "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local",
		"AWS_ENDPOINT_URL_DYNAMODB=" + e.DynamoURL, "AWS_ENDPOINT_URL_SQS=" + e.SQSURL,
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + e.SecretURL,
		"MESSAGES_TABLE=" + Table, "DELIVERY_EVENTS_QUEUE_URL=" + e.EventsQueueURL,
		"SEND_QUEUE_URL=" + e.SendQueueURL, "DEAD_LETTER_QUEUE_URL=" + e.DLQURL, "RECEIPT_QUEUE_URL=" + e.ReceiptQueueURL,
		"BULK_SEND_QUEUE_URL=" + e.BulkSendQueueURL, "BULK_DEAD_LETTER_QUEUE_URL=" + e.BulkDLQURL,
		"SKYCORE_SECRET_ID=" + SecretID, "POSTBACK_SECRET_ID=" + SecretID,
	}, e.busEnviron()...)
}

// DrainEvents removes and decodes every delivery event, oldest first; the
// error joins every failure (an undecodable event is removed all the same).
func (e *Env) DrainEvents() ([]delivery.Event, error) {
	ctx := context.Background()
	msgs, err := e.Drain(ctx, EventQueue)
	out := make([]delivery.Event, 0, len(msgs))
	for _, m := range msgs {
		ev, derr := DecodeEvent(m)
		if derr != nil {
			err = errors.Join(err, derr) // and go on: the message is gone
			continue
		}
		out = append(out, ev)
	}
	return out, err
}

// Logs is a concurrency-safe buffer for a function's log lines in tests.
type Logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// ReadEvent decodes a sample event, for example "events/sqs/batch-mixed.json"
// relative to the repository root, into v.
func ReadEvent(name string, v any) error {
	root, err := dynalite.Root()
	if err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
