package faultproxy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/fakesecrets"
	"github.com/mmsgate/mmsgate/internal/fakesqs"
	"github.com/mmsgate/mmsgate/internal/faultproxy"
	"github.com/mmsgate/mmsgate/internal/moto"
	"github.com/mmsgate/mmsgate/pkg/sdkhttp"
)

func cfg() aws.Config {
	return aws.Config{Region: "us-east-1", HTTPClient: sdkhttp.Wrap(nil), Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
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

// TestSQSCounts: the proxy counts SQS requests by caller, operation and
// queue, with the messages they carried and SQS's billed 64 KiB chunks, and
// keeps the bodies of the operations it is asked to record.
func TestSQSCounts(t *testing.T) {
	for name, target := range targets(t) {
		t.Run(name, func(t *testing.T) {
			p, base := proxy(t, target)
			p.Record("ChangeMessageVisibility")
			ctx := t.Context()
			app := cfg()
			app.AppID = "send-mms"
			c := sqs.NewFromConfig(app, func(o *sqs.Options) { o.BaseEndpoint = aws.String(base) })
			harness := sqs.NewFromConfig(cfg(), func(o *sqs.Options) { o.BaseEndpoint = aws.String(base) })
			q, err := harness.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprintf("counted%d", time.Now().UnixNano()))})
			if err != nil {
				t.Fatal(err)
			}
			url := q.QueueUrl
			queue := (*url)[strings.LastIndexByte(*url, '/')+1:]
			big := strings.Repeat("x", 100<<10) // two 64 KiB chunks
			if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: url, MessageBody: aws.String(big)}); err != nil {
				t.Fatal(err)
			}
			var entries []types.SendMessageBatchRequestEntry
			for i := range 3 {
				entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(`{"id":"a"}`),
					MessageAttributes: map[string]types.MessageAttributeValue{"event": {DataType: aws.String("String"), StringValue: aws.String("accepted")}}})
			}
			if out, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: url, Entries: entries}); err != nil || len(out.Successful) != 3 {
				t.Fatalf("SendMessageBatch = %+v, %v", out, err)
			}
			if _, err := harness.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: url, MessageBody: aws.String("by the harness")}); err != nil {
				t.Fatal(err)
			}
			var got []types.Message
			for len(got) < 5 {
				r, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: url, MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}})
				if err != nil || len(r.Messages) == 0 {
					t.Fatalf("ReceiveMessage = %d messages, %v; want 5 in all", len(got), err)
				}
				got = append(got, r.Messages...)
			}
			if _, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: url, ReceiptHandle: got[0].ReceiptHandle, VisibilityTimeout: 5}); err != nil {
				t.Fatal(err)
			}
			var dels []types.DeleteMessageBatchRequestEntry
			for i, m := range got[1:] {
				dels = append(dels, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
			}
			if out, err := c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: url, Entries: dels}); err != nil || len(out.Successful) != 4 {
				t.Fatalf("DeleteMessageBatch = %+v, %v", out, err)
			}

			calls := p.SQSCalls()
			var receive faultproxy.SQSUsage
			for k, u := range calls {
				if k.Caller == "send-mms" && k.Op == "ReceiveMessage" {
					receive.Requests += u.Requests
					receive.Messages += u.Messages
					receive.Billed += u.Billed
					delete(calls, k)
				}
			}
			if receive.Messages != 5 || receive.Billed != receive.Requests+1 { // the big one is two chunks
				t.Errorf("ReceiveMessage: %+v, want 5 messages, one chunk more than requests", receive)
			}
			want := map[faultproxy.SQSCall]faultproxy.SQSUsage{
				{Caller: "", Op: "CreateQueue", Queue: queue}:                     {Requests: 1, Billed: 1},
				{Caller: "", Op: "SendMessage", Queue: queue}:                     {Requests: 1, Messages: 1, Billed: 1},
				{Caller: "send-mms", Op: "SendMessage", Queue: queue}:             {Requests: 1, Messages: 1, Billed: 2},
				{Caller: "send-mms", Op: "SendMessageBatch", Queue: queue}:        {Requests: 1, Messages: 3, Billed: 1},
				{Caller: "send-mms", Op: "ChangeMessageVisibility", Queue: queue}: {Requests: 1, Messages: 1, Billed: 1},
				{Caller: "send-mms", Op: "DeleteMessageBatch", Queue: queue}:      {Requests: 1, Messages: 4, Billed: 1},
			}
			if diff := cmp.Diff(want, calls); diff != "" {
				t.Errorf("SQSCalls (-want +got):\n%s", diff)
			}
			type visibility struct {
				ReceiptHandle     string
				VisibilityTimeout int
			}
			var change []visibility
			for _, r := range p.Recorded("ChangeMessageVisibility") {
				var c visibility
				if r.Caller != "send-mms" {
					t.Errorf("recorded caller %q, want send-mms", r.Caller)
				}
				if err := json.Unmarshal(r.Body, &c); err != nil {
					t.Fatal(err)
				}
				change = append(change, c)
			}
			if len(change) != 1 || change[0].ReceiptHandle != *got[0].ReceiptHandle || change[0].VisibilityTimeout != 5 {
				t.Errorf("Recorded(ChangeMessageVisibility) = %+v", change)
			}
			if n := len(p.Recorded("SendMessage")); n != 0 {
				t.Errorf("%d SendMessage bodies kept without Record", n)
			}
		})
	}
}

// TestSQSCountsRefused: a refused send is a request (billed, the bill
// errs high) but moves no message; a batch counts the entries SQS took.
func TestSQSCountsRefused(t *testing.T) {
	for name, target := range targets(t) {
		t.Run(name, func(t *testing.T) {
			p, base := proxy(t, target)
			c := sqs.NewFromConfig(cfg(), func(o *sqs.Options) { o.BaseEndpoint = aws.String(base); o.RetryMaxAttempts = 1 })
			q, err := c.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprintf("refused%d", time.Now().UnixNano()))})
			if err != nil {
				t.Fatal(err)
			}
			queue := (*q.QueueUrl)[strings.LastIndexByte(*q.QueueUrl, '/')+1:]
			var n int
			p.RefuseSends(func(string) error {
				n++
				if n%2 == 1 {
					return errors.New("refused")
				}
				return nil
			})
			if _, err := c.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String("x")}); err == nil {
				t.Fatal("the refused send succeeded")
			}
			var entries []types.SendMessageBatchRequestEntry
			for i := range 4 { // n = 2..5: entries 1 and 3 refused
				entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String("y")})
			}
			out, err := c.SendMessageBatch(t.Context(), &sqs.SendMessageBatchInput{QueueUrl: q.QueueUrl, Entries: entries})
			if err != nil || len(out.Successful) != 2 || len(out.Failed) != 2 {
				t.Fatalf("SendMessageBatch = %+v, %v; want 2 taken, 2 refused", out, err)
			}
			calls := p.SQSCalls()
			if got := calls[faultproxy.SQSCall{Op: "SendMessage", Queue: queue}]; got != (faultproxy.SQSUsage{Requests: 1, Billed: 1}) {
				t.Errorf("refused SendMessage: %+v, want one request, no message", got)
			}
			if got := calls[faultproxy.SQSCall{Op: "SendMessageBatch", Queue: queue}]; got != (faultproxy.SQSUsage{Requests: 1, Messages: 2, Billed: 1}) {
				t.Errorf("half-refused SendMessageBatch: %+v, want one request, 2 messages", got)
			}
		})
	}
}
