package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mmsgate/mmsgate/client"
	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
)

// TestEndToEnd drives the client against the local stand-ins that `make
// dev` serves (moto for SQS, as there): what Send and SendBatch enqueue is
// what the sender decodes, and what the publisher writes is what the
// Receiver hands over.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts dynalite (Node) and moto_server")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	env, err := localenv.Start(ctx, localenv.Options{Moto: true})
	if err != nil {
		t.Fatalf("localenv.Start = %v", err)
	}
	t.Cleanup(env.Close)
	api := env.SQSClient()
	p := client.Policy{DefaultFrom: "60856"}
	c := client.New(api, env.SendQueueURL, p)

	// want is what the sender must decode for each id.
	want := map[string]client.Request{}
	expect := func(r client.Request) {
		v, err := client.Validate(r, p)
		if err != nil {
			t.Fatalf("Validate(%s) = %v", r.ID, err)
		}
		want[r.ID] = v
	}

	one := contractRequest(t)
	one.From = "" // from the policy
	if err := c.Send(ctx, one); err != nil {
		t.Fatalf("Send = %v", err)
	}
	expect(one)

	reqs := requests(25)
	reqs[0].MMSID = "0001000"
	reqs[1].Slides = []client.Slide{{Slide: 2, Text: "Ünïcødé\nline ✓ <&>"}}
	reqs[2].VCard = &client.VCard{FirstName: "Acme", Emails: []client.Email{{ID: "help@acme.example"}}}
	reqs[17].To = "+1 774 FLOWERS" // invalid: never enqueued
	err = c.SendBatch(ctx, reqs)
	var be *client.BatchError
	if !errors.As(err, &be) || len(be.Failures) != 1 || be.Failures[0].Index != 17 || !errors.Is(err, client.ErrInvalid) {
		t.Fatalf("SendBatch = %v, want request 17 alone failed as invalid", err)
	}
	for i, r := range reqs {
		if i != 17 {
			expect(r)
		}
	}

	got := map[string]client.Request{}
	for deadline := time.Now().Add(30 * time.Second); len(got) < len(want) && time.Now().Before(deadline); {
		out, err := api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(env.SendQueueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatalf("ReceiveMessage = %v", err)
		}
		for _, m := range out.Messages {
			r, err := sendreq.Decode([]byte(aws.ToString(m.Body)))
			if err != nil {
				t.Fatalf("sendreq.Decode(%s) = %v", aws.ToString(m.Body), err)
			}
			if _, dup := got[r.ID]; dup {
				t.Errorf("id %s received twice", r.ID)
			}
			got[r.ID] = *r
			if _, err := api.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(env.SendQueueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatalf("DeleteMessage = %v", err)
			}
		}
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("requests on the send queue, as the sender decodes them (-want +got):\n%s", diff)
	}

	// Delivery events: one of each kind, published as the functions do.
	pub := delivery.NewPublisher(api, env.EventsQueueURL)
	mmsID := int64(48211)
	var published []client.Event
	for i, kind := range client.Kinds() {
		e := delivery.Event{ID: fmt.Sprintf("order-%02d", i), Event: kind, TrackingID: "T" + kind, Code: "C" + kind,
			To: "17743199144", MMSID: &mmsID, RecordedAt: "2026-11-24T21:02:12.031Z"}
		if err := pub.Publish(ctx, e); err != nil {
			t.Fatalf("Publish(%s) = %v", kind, err)
		}
		published = append(published, client.Event(e))
	}
	r := &client.Receiver{API: api, QueueURL: env.EventsQueueURL, Wait: time.Second}
	var received []client.Event
	for deadline := time.Now().Add(30 * time.Second); len(received) < len(published) && time.Now().Before(deadline); {
		if _, err := r.Poll(ctx, func(_ context.Context, e client.Event) error {
			received = append(received, e)
			return nil
		}); err != nil {
			t.Fatalf("Poll = %v", err)
		}
	}
	// Events are at least once (docs/events.md): a standard queue may hand
	// one over twice, and the application de-duplicates as here; a missing,
	// changed or foreign event still fails.
	sort.Slice(received, func(i, j int) bool { return received[i].ID < received[j].ID })
	if n := len(received); n > 0 {
		received = slices.CompactFunc(received, func(a, b client.Event) bool { return cmp.Equal(a, b) })
		if d := n - len(received); d > 0 {
			t.Logf("%d event(s) handed over twice, de-duplicated as docs/events.md asks", d)
		}
	}
	if diff := cmp.Diff(published, received); diff != "" {
		t.Errorf("events received (-published +received):\n%s", diff)
	}
	// Every handled message was deleted, and nothing else was enqueued
	// (the invalid request above included).
	for _, q := range []string{env.SendQueueURL, env.EventsQueueURL} {
		if n := queued(ctx, t, api, q); n != 0 {
			t.Errorf("%s holds %d messages, want 0", q, n)
		}
	}
}

// queued counts a queue's messages, visible or in flight, through the SQS API.
func queued(ctx context.Context, t *testing.T, api *sqs.Client, url string) int {
	t.Helper()
	out, err := api.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible, sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed}})
	if err != nil {
		t.Fatalf("GetQueueAttributes(%s) = %v", url, err)
	}
	n := 0
	for _, v := range out.Attributes {
		c, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("GetQueueAttributes(%s) = %v", url, out.Attributes)
		}
		n += c
	}
	return n
}
