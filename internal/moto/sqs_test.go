package moto_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/internal/fakesqs"
	"github.com/mmsgate/mmsgate/internal/moto"
	"github.com/mmsgate/mmsgate/pkg/sdkhttp"
)

var (
	server *moto.Server
	// fake is our in-process SQS (internal/fakesqs), which `go test -short`
	// uses where no service may run: the behaviour tests below run against
	// both, so it stays what moto (and SQS) is on what mmsgate relies on.
	fake *fakesqs.Server
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("SKIP moto tests: -short starts no service")
		os.Exit(0)
	}
	if _, err := moto.Binary(); err != nil {
		fmt.Println("SKIP moto tests:", err)
		os.Exit(0)
	}
	start := time.Now()
	s, err := moto.Start(context.Background(), moto.Options{})
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Printf("moto_server %s ready in %v\n", moto.Version, time.Since(start).Round(time.Millisecond))
	server = s
	fake = fakesqs.New()
	fakeURL, err = fake.Start("127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	code := m.Run()
	fake.Close()
	s.Close()
	os.Exit(code)
}

func cfg() aws.Config {
	return aws.Config{Region: "us-east-1", HTTPClient: sdkhttp.Wrap(nil), Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local"}, nil
	})}
}

var fakeURL string

func sqsClient() *sqs.Client { return sqsClientAt(server.URL) }

func sqsClientAt(url string) *sqs.Client {
	return sqs.NewFromConfig(cfg(), func(o *sqs.Options) { o.BaseEndpoint = aws.String(url); o.RetryMaxAttempts = 1 })
}

// both runs a behaviour test against moto and against fakesqs.
func both(t *testing.T, f func(t *testing.T, c *sqs.Client, backend string)) {
	for _, b := range []struct{ name, url string }{{"moto", server.URL}, {"fakesqs", fakeURL}} {
		t.Run(b.name, func(t *testing.T) { f(t, sqsClientAt(b.url), b.name) })
	}
}

// queue creates a fresh queue; dlq (when not "") is its redrive target.
func queue(t *testing.T, c *sqs.Client, visibility int, dlqARN string, maxReceive int) (url, arn string) {
	t.Helper()
	attrs := map[string]string{"VisibilityTimeout": strconv.Itoa(visibility)}
	if dlqARN != "" {
		attrs["RedrivePolicy"] = fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, dlqARN, maxReceive)
	}
	name := fmt.Sprintf("q%d", time.Now().UnixNano())
	out, err := c.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	return *out.QueueUrl, a.Attributes["QueueArn"]
}

func receive(t *testing.T, c *sqs.Client, url string, wait int32) []types.Message {
	t.Helper()
	out, err := c.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: wait,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
		MessageAttributeNames:       []string{"All"}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Messages
}

func send(t *testing.T, c *sqs.Client, url, body string) {
	t.Helper()
	if _, err := c.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body),
		MessageAttributes: map[string]types.MessageAttributeValue{"error": {DataType: aws.String("String"), StringValue: aws.String("why")}}}); err != nil {
		t.Fatal(err)
	}
}

// TestReceiveCountAndRedrive: what the sender's back-off and the soak rely
// on. ChangeMessageVisibility(0) makes a message visible again without
// counting a receive, and the redrive moves it on the receive after
// maxReceiveCount, with its attributes (local-aws-sqs got both wrong).
func TestReceiveCountAndRedrive(t *testing.T) {
	both(t, func(t *testing.T, c *sqs.Client, backend string) {
		dlq, dlqARN := queue(t, c, 30, "", 0)
		q, _ := queue(t, c, 30, dlqARN, 3)
		send(t, c, q, "poison")
		for want := 1; want <= 3; want++ {
			msgs := receive(t, c, q, 0)
			if len(msgs) != 1 {
				t.Fatalf("receive %d: %d messages, want 1", want, len(msgs))
			}
			if got := msgs[0].Attributes["ApproximateReceiveCount"]; got != strconv.Itoa(want) {
				t.Errorf("receive %d: ApproximateReceiveCount = %s, want %d", want, got, want)
			}
			if _, err := c.ChangeMessageVisibility(t.Context(), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(q),
				ReceiptHandle: msgs[0].ReceiptHandle, VisibilityTimeout: 0}); err != nil {
				t.Fatal(err)
			}
		}
		if msgs := receive(t, c, q, 0); len(msgs) != 0 {
			t.Errorf("receive 4 got %d messages, want 0 (moved to the DLQ)", len(msgs))
		}
		msgs := receive(t, c, dlq, 0)
		if len(msgs) != 1 || *msgs[0].Body != "poison" || *msgs[0].MessageAttributes["error"].StringValue != "why" {
			t.Fatalf("DLQ holds %+v, want the message with its attributes", msgs)
		}
	})
}

// TestVisibility: a received message stays hidden for its visibility
// timeout, then comes back; a changed visibility is honoured.
func TestVisibility(t *testing.T) {
	both(t, func(t *testing.T, c *sqs.Client, backend string) {
		q, _ := queue(t, c, 1, "", 0)
		send(t, c, q, "a")
		if n := len(receive(t, c, q, 0)); n != 1 {
			t.Fatalf("first receive: %d", n)
		}
		if n := len(receive(t, c, q, 0)); n != 0 {
			t.Errorf("receive while hidden: %d messages, want 0", n)
		}
		time.Sleep(1200 * time.Millisecond)
		msgs := receive(t, c, q, 0)
		if len(msgs) != 1 {
			t.Fatalf("after the visibility timeout: %d messages, want 1", len(msgs))
		}
		c.ChangeMessageVisibility(t.Context(), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(q), ReceiptHandle: msgs[0].ReceiptHandle, VisibilityTimeout: 3})
		time.Sleep(1200 * time.Millisecond)
		if n := len(receive(t, c, q, 0)); n != 0 {
			t.Errorf("after ChangeMessageVisibility(3) and 1.2 s: %d messages, want 0", n)
		}
	})
}

// TestDelay: DelaySeconds hides a new message.
func TestDelay(t *testing.T) {
	both(t, func(t *testing.T, c *sqs.Client, backend string) {
		q, _ := queue(t, c, 30, "", 0)
		if _, err := c.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String("later"), DelaySeconds: 1}); err != nil {
			t.Fatal(err)
		}
		if n := len(receive(t, c, q, 0)); n != 0 {
			t.Errorf("before the delay: %d messages, want 0", n)
		}
		time.Sleep(1100 * time.Millisecond)
		if n := len(receive(t, c, q, 0)); n != 1 {
			t.Errorf("after the delay: %d messages, want 1", n)
		}
	})
}

// TestBatches: what sqs-consumer and the soak use. The SDK checks every
// MD5 of SendMessageBatch's answer.
func TestBatches(t *testing.T) {
	both(t, func(t *testing.T, c *sqs.Client, backend string) {
		q, _ := queue(t, c, 30, "", 0)
		var entries []types.SendMessageBatchRequestEntry
		for i := range 10 {
			entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String("m" + strconv.Itoa(i)),
				MessageAttributes: map[string]types.MessageAttributeValue{"event": {DataType: aws.String("String"), StringValue: aws.String("accepted")}}})
		}
		out, err := c.SendMessageBatch(t.Context(), &sqs.SendMessageBatchInput{QueueUrl: aws.String(q), Entries: entries})
		if err != nil || len(out.Successful) != 10 {
			t.Fatalf("SendMessageBatch: %v, %d successful", err, len(out.Successful))
		}
		msgs := receive(t, c, q, 0)
		if len(msgs) != 10 {
			t.Fatalf("received %d, want 10", len(msgs))
		}
		var vis []types.ChangeMessageVisibilityBatchRequestEntry
		var del []types.DeleteMessageBatchRequestEntry
		for i, m := range msgs {
			vis = append(vis, types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 60})
			del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
		// fakesqs has no ChangeMessageVisibilityBatch: mmsgate never calls
		// it (sqs-consumer does, against moto in make dev).
		if backend == "moto" {
			if o, err := c.ChangeMessageVisibilityBatch(t.Context(), &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(q), Entries: vis}); err != nil || len(o.Successful) != 10 {
				t.Fatalf("ChangeMessageVisibilityBatch: %v", err)
			}
		}
		if o, err := c.DeleteMessageBatch(t.Context(), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q), Entries: del}); err != nil || len(o.Successful) != 10 {
			t.Fatalf("DeleteMessageBatch: %v", err)
		}
		a, err := c.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(q), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
		if err != nil {
			t.Fatal(err)
		}
		if a.Attributes["ApproximateNumberOfMessages"] != "0" || a.Attributes["ApproximateNumberOfMessagesNotVisible"] != "0" {
			t.Errorf("after the batch delete: %v", a.Attributes)
		}
	})
}

// TestVisibilityLimit: SQS refuses a visibility beyond 12 hours in all
// from the receive, the whole change, not just the excess (the sender's
// in-doubt wait relies on its cap, pkg/sender.MaxVisibility).
func TestVisibilityLimit(t *testing.T) {
	both(t, func(t *testing.T, c *sqs.Client, backend string) {
		q, _ := queue(t, c, 30, "", 0)
		send(t, c, q, "a")
		msgs := receive(t, c, q, 0)
		if len(msgs) != 1 {
			t.Fatalf("received %d", len(msgs))
		}
		time.Sleep(1100 * time.Millisecond)
		change := func(secs int32) string {
			_, err := c.ChangeMessageVisibility(t.Context(), &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(q),
				ReceiptHandle: msgs[0].ReceiptHandle, VisibilityTimeout: secs})
			var api interface{ ErrorCode() string }
			if errors.As(err, &api) {
				return api.ErrorCode()
			}
			if err != nil {
				return err.Error()
			}
			return ""
		}
		if got := change(43200); got != "InvalidParameterValue" && got != "AWS.SimpleQueueService.InvalidParameterValue" {
			t.Errorf("12 h one second after the receive: %q, want InvalidParameterValue", got)
		}
		if got := change(43200 - 60); got != "" {
			t.Errorf("12 h less a minute: %q, want accepted", got)
		}
	})
}

// TestLongPolling: a waiting ReceiveMessage returns as soon as a message
// arrives, not at the end of its wait.
func TestLongPolling(t *testing.T) {
	both(t, func(t *testing.T, c *sqs.Client, backend string) {
		q, _ := queue(t, c, 30, "", 0)
		go func() {
			time.Sleep(300 * time.Millisecond)
			c.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String("x")})
		}()
		start := time.Now()
		msgs := receive(t, c, q, 5)
		if len(msgs) != 1 {
			t.Fatalf("long poll returned %d messages", len(msgs))
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("long poll returned after %v, want soon after the send (0.3 s)", d)
		}
	})
}

// TestValidation: SQS's own answers to out-of-range parameters.
func TestValidation(t *testing.T) {
	c := sqsClient()
	q, _ := queue(t, c, 30, "", 0)
	cases := map[string]struct {
		call func() error
		want string // the error code; "" = accepted
	}{
		"DelaySeconds 1000": {func() error {
			_, err := c.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String("x"), DelaySeconds: 1000})
			return err
		}, "InvalidParameterValue"},
		"MaxNumberOfMessages 50": {func() error {
			_, err := c.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), MaxNumberOfMessages: 50})
			return err
		}, "InvalidParameterValue"},
		"WaitTimeSeconds 25": {func() error {
			_, err := c.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), WaitTimeSeconds: 25})
			return err
		}, "InvalidParameterValue"},
		"VisibilityTimeout 43201": {func() error {
			_, err := c.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), VisibilityTimeout: 43201})
			return err
		}, "InvalidParameterValue"},
		"unknown queue": {func() error {
			_, err := c.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(server.URL + "/123456789012/nope"), MessageBody: aws.String("x")})
			return err
		}, "AWS.SimpleQueueService.NonExistentQueue"},
		"batch ids not distinct": {func() error {
			_, err := c.SendMessageBatch(t.Context(), &sqs.SendMessageBatchInput{QueueUrl: aws.String(q), Entries: []types.SendMessageBatchRequestEntry{
				{Id: aws.String("a"), MessageBody: aws.String("x")}, {Id: aws.String("a"), MessageBody: aws.String("y")}}})
			return err
		}, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.call()
			var api interface{ ErrorCode() string }
			got := ""
			if errors.As(err, &api) {
				got = api.ErrorCode()
			} else if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("error code = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestSecrets: the README's steps (create, put, get, describe).
func TestSecrets(t *testing.T) {
	c := secretsmanager.NewFromConfig(cfg(), func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(server.URL) })
	name := fmt.Sprintf("mmsgate/test-%d", time.Now().UnixNano())
	if _, err := c.CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(`{"api_key":"a"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutSecretValue(t.Context(), &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(`{"api_key":"b"}`)}); err != nil {
		t.Fatal(err)
	}
	out, err := c.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil || *out.SecretString != `{"api_key":"b"}` {
		t.Fatalf("GetSecretValue = %v, %v; want the value put", out, err)
	}
	if _, err := c.DescribeSecret(t.Context(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
}

// TestWhereMotoDiffers pins what moto 5.2.1 accepts and real SQS refuses.
// Nothing in mmsgate depends on these (the sender never sends an empty
// body or an unknown DataType), so no stand-in of our own is needed for
// them; the test fails when a moto upgrade changes them, so that this
// note stays true.
func TestWhereMotoDiffers(t *testing.T) {
	c := sqsClient()
	q, _ := queue(t, c, 30, "", 0)
	cases := map[string]struct {
		call     func() error
		realSQS  string // real SQS's error code
		motoCode string // moto's
	}{
		"empty body": {func() error {
			_, err := c.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(q), MessageBody: aws.String("")})
			return err
		}, "InvalidParameterValue", ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := tc.call()
			got := ""
			var api interface{ ErrorCode() string }
			if errors.As(err, &api) {
				got = api.ErrorCode()
			} else if err != nil {
				got = err.Error()
			}
			if got != tc.motoCode {
				t.Errorf("moto now answers %q (real SQS: %q); update this test and local-stand-ins notes", got, tc.realSQS)
			}
		})
	}
}
