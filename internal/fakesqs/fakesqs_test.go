package fakesqs

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

func client(t *testing.T, s *Server) *sqs.Client {
	t.Helper()
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "a", SecretAccessKey: "b"}, nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	return sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(url) })
}

// TestSDKRoundTrip runs the real client: its MD5 checks of bodies and
// attributes pass, receive counts grow, visibility and delete work.
func TestSDKRoundTrip(t *testing.T) {
	s := New()
	c := client(t, s)
	ctx := context.Background()
	out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("q"), Attributes: map[string]string{"VisibilityTimeout": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	q := out.QueueUrl
	_, err = c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q, MessageBody: aws.String("héllo"),
		MessageAttributes: map[string]types.MessageAttributeValue{
			"event": {DataType: aws.String("String"), StringValue: aws.String("accepted")},
			"n":     {DataType: aws.String("Number"), StringValue: aws.String("7")},
		}})
	if err != nil {
		t.Fatalf("SendMessage (MD5 checks) = %v", err)
	}
	recv := func() *sqs.ReceiveMessageOutput {
		r, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q, MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}, WaitTimeSeconds: 2})
		if err != nil {
			t.Fatalf("ReceiveMessage (MD5 checks) = %v", err)
		}
		return r
	}
	r := recv()
	if len(r.Messages) != 1 || *r.Messages[0].Body != "héllo" || r.Messages[0].Attributes["ApproximateReceiveCount"] != "1" ||
		*r.Messages[0].MessageAttributes["event"].StringValue != "accepted" {
		t.Fatalf("receive = %+v", r.Messages)
	}
	if again, _ := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q}); len(again.Messages) != 0 {
		t.Fatal("a received message must be hidden for its visibility timeout")
	}
	r = recv() // long poll until it is visible again
	if len(r.Messages) != 1 || r.Messages[0].Attributes["ApproximateReceiveCount"] != "2" {
		t.Fatalf("redelivery = %+v", r.Messages)
	}
	if _, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: q, ReceiptHandle: r.Messages[0].ReceiptHandle, VisibilityTimeout: 60}); err != nil {
		t.Fatal(err)
	}
	if m := s.messages("q"); time.Until(m[0].VisibleAt) < 50*time.Second {
		t.Errorf("visibility not changed: %v", time.Until(m[0].VisibleAt))
	}
	if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: q, ReceiptHandle: r.Messages[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if m := s.messages("q"); len(m) != 0 {
		t.Errorf("after delete: %d messages", len(m))
	}
}

// Redrive and delays through the HTTP API are tested against moto and
// this fake alike in internal/moto (not under -short); these keep -short
// honest.
func TestRedrive(t *testing.T) {
	s := New()
	s.createQueue("dlq", time.Minute, "", 0)
	s.createQueue("q", 0, "dlq", 2)
	s.send("q", "poison", nil, 0)
	for i := range 2 {
		if got, _ := s.receive("q", 1, time.Nanosecond); len(got) != 1 || got[0].ReceiveCount != i+1 {
			t.Fatalf("receive %d = %+v", i, got)
		}
		time.Sleep(time.Millisecond)
	}
	if got, _ := s.receive("q", 1, time.Nanosecond); len(got) != 0 {
		t.Fatalf("third receive = %+v, want it moved to the DLQ", got)
	}
	if d := s.messages("dlq"); len(d) != 1 || d[0].Body != "poison" || d[0].DeadLetterReason == "" {
		t.Errorf("DLQ = %+v", d)
	}
}

func TestDelay(t *testing.T) {
	s := New()
	s.createQueue("q", time.Minute, "", 0)
	s.send("q", "later", nil, time.Hour)
	if got, _ := s.receive("q", 1, 0); len(got) != 0 {
		t.Error("a delayed message was received at once")
	}
	if m := s.messages("q"); len(m) != 1 || time.Until(m[0].VisibleAt) < 59*time.Minute {
		t.Errorf("messages = %+v, want one visible in an hour", m)
	}
}
