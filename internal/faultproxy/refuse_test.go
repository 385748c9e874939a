package faultproxy_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/internal/fakesecrets"
	"github.com/mmsgate/mmsgate/internal/fakesqs"
	"github.com/mmsgate/mmsgate/internal/faultproxy"
	"github.com/mmsgate/mmsgate/internal/moto"
)

func cfg() aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local"}, nil
	})}
}

// targets are the stand-ins the proxy is tried in front of: ours always,
// moto's server when installed and not -short. The faults must look the
// same to the SDK whatever serves the calls.
func targets(t *testing.T) map[string]string {
	t.Helper()
	fq := fakesqs.New()
	u, err := fq.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fq.Close() })
	out := map[string]string{"fakesqs": u}
	if testing.Short() {
		return out
	}
	if _, err := moto.Binary(); err != nil {
		t.Logf("moto: %v", err)
		return out
	}
	m, err := moto.Start(t.Context(), moto.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	out["moto"] = m.URL
	return out
}

func proxy(t *testing.T, target string) (*faultproxy.Proxy, string) {
	t.Helper()
	p, u, err := faultproxy.Front(target, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, u
}

// TestRefuseSends: a refused SendMessage is SQS's 500 (retried by the SDK,
// then an error); a refused batch entry is in Failed while the others are
// on the queue, with the MD5s the SDK checks.
func TestRefuseSends(t *testing.T) {
	for name, target := range targets(t) {
		t.Run(name, func(t *testing.T) {
			p, u := proxy(t, target)
			c := sqs.NewFromConfig(cfg(), func(o *sqs.Options) { o.BaseEndpoint = aws.String(u); o.RetryMaxAttempts = 2 })
			ctx := t.Context()
			name := fmt.Sprintf("refuse-%d", time.Now().UnixNano())
			q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String("one")}); err != nil {
				t.Fatal(err)
			}
			p.RefuseSends(func(string) error { return errors.New("refused") })
			_, err = c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String("two")})
			var api interface{ ErrorCode() string }
			if !errors.As(err, &api) || api.ErrorCode() != "InternalError" {
				t.Fatalf("refused send: %v; want InternalError", err)
			}
			var mu sync.Mutex // the proxy asks from its own goroutines
			var asked []string
			p.RefuseSends(func(queue string) error {
				mu.Lock()
				defer mu.Unlock()
				asked = append(asked, queue)
				if len(asked)%2 == 0 {
					return errors.New("refused")
				}
				return nil
			})
			out, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: q.QueueUrl, Entries: []types.SendMessageBatchRequestEntry{
				{Id: aws.String("a"), MessageBody: aws.String("a"), MessageAttributes: map[string]types.MessageAttributeValue{"event": {DataType: aws.String("String"), StringValue: aws.String("x")}}},
				{Id: aws.String("b"), MessageBody: aws.String("b")},
				{Id: aws.String("c"), MessageBody: aws.String("c")},
				{Id: aws.String("d"), MessageBody: aws.String("d")},
			}})
			if err != nil {
				t.Fatal(err)
			}
			var ok, failed []string
			for _, e := range out.Successful {
				ok = append(ok, *e.Id)
			}
			for _, e := range out.Failed {
				failed = append(failed, *e.Id+":"+aws.ToString(e.Code))
			}
			slices.Sort(ok)
			slices.Sort(failed)
			if !slices.Equal(ok, []string{"a", "c"}) || !slices.Equal(failed, []string{"b:InternalError", "d:InternalError"}) {
				t.Errorf("batch: successful %v, failed %v; want a, c through and b, d refused", ok, failed)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(asked) != 4 || asked[0] != name {
				t.Errorf("asked about %v; want the queue's name for each entry", asked)
			}
			p.RefuseSends(nil)
			got, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10})
			if err != nil {
				t.Fatal(err)
			}
			var bodies []string
			for _, m := range got.Messages {
				bodies = append(bodies, *m.Body)
			}
			slices.Sort(bodies)
			if !slices.Equal(bodies, []string{"a", "c", "one"}) {
				t.Errorf("queue holds %v; want one, a, c", bodies)
			}
		})
	}
}

// TestDownAndSlow: a service that is down answers 500 with its own
// internal error; a slow one answers late.
func TestDownAndSlow(t *testing.T) {
	f := fakesecrets.New()
	target, err := f.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	f.Put("s", "v")
	p, u := proxy(t, target)
	c := secretsmanager.NewFromConfig(cfg(), func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(u); o.RetryMaxAttempts = 1 })
	get := func() error {
		_, err := c.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("s")})
		return err
	}
	p.SetDown(true)
	var api interface{ ErrorCode() string }
	if err := get(); !errors.As(err, &api) || api.ErrorCode() != "InternalServiceError" {
		t.Errorf("down: %v; want InternalServiceError", err)
	}
	p.SetDown(false)
	p.SetDelay(150 * time.Millisecond)
	start := time.Now()
	if err := get(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("answered in %v; want at least the delay", d)
	}
}
