package client_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/client"
	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// Validate checks a request with the sender's own rules and lists every
// violated field with its code.
func ExampleValidate() {
	p := client.Policy{DefaultFrom: "60856"} // as the sender is deployed
	req := client.Request{
		ID:     "order-1",
		To:     "1-774-FLOWERS",
		MMSID:  "48211",
		Slides: []client.Slide{{Slide: 1, Text: "Your order shipped"}, {Slide: 1, Text: "Track it any time"}},
		VCard:  &client.VCard{FirstName: "Acme", Phones: []client.Phone{{Number: "18005550100", Label: "mobile"}}},
	}
	_, err := client.Validate(req, p)
	fmt.Println(errors.Is(err, client.ErrInvalid))
	for _, v := range apperr.All(err) {
		fmt.Printf("%s %s: %s\n", v.Code, v.Field, v.Message)
	}

	req.To = "+1 (774) 319-9144" // as people write it: enqueued as digits
	req.Slides[1].Slide = 2
	req.VCard.Phones[0].Label = "work"
	ok, err := client.Validate(req, p)
	fmt.Println(err, ok.To, ok.From)
	// Output:
	// true
	// E110 to: must be an international number of 7-15 digits (a leading + and spaces, - . ( ) between them are allowed)
	// E100 slides[1].slide: slide 1 is given twice
	// E1516 vcard.phones[0].label: label must be work or home
	// <nil> 17743199144 60856
}

// Send puts one request on the send queue; here the queue is a fake that
// prints what it gets. An application passes an *sqs.Client.
func ExampleClient_Send() {
	fake := &fakeSQS{SendMessageFn: func(_ context.Context, in *sqs.SendMessageInput) (*sqs.SendMessageOutput, error) {
		fmt.Println(aws.ToString(in.QueueUrl))
		fmt.Println(aws.ToString(in.MessageBody))
		return &sqs.SendMessageOutput{MessageId: aws.String("m1")}, nil
	}}
	c := client.New(fake, "https://sqs.us-east-1.amazonaws.com/123456789012/mmsgate-send", client.Policy{DefaultFrom: "60856"})
	err := c.Send(context.Background(), client.Request{
		ID:       "order-8812-shipped",
		To:       "17743199144",
		MMSID:    "048211",
		Subject:  "Your order shipped",
		Slides:   []client.Slide{{Slide: 1, Text: "Hi Jane,\nyour parcel is on its way"}},
		Fallback: &client.Fallback{Text: "Your order shipped, details:"},
		Data:     map[string]string{"firstname": "Jane"},
	})
	fmt.Println(err)

	err = c.Send(context.Background(), client.Request{ID: "order-8813", To: "17743199144"})
	fmt.Println(err)
	// Output:
	// https://sqs.us-east-1.amazonaws.com/123456789012/mmsgate-send
	// {"id":"order-8812-shipped","to":"17743199144","from":"60856","mmsId":48211,"subject":"Your order shipped","slides":[{"slide":1,"text":"Hi Jane,\nyour parcel is on its way"}],"fallback":{"text":"Your order shipped, details:"},"data":{"firstname":"Jane"}}
	// <nil>
	// invalid send request "order-8813": E620 mmsId: is required
}

// SendBatch sends many requests, 10 per SendMessageBatch call, and names
// each request that was not enqueued and why: here one is invalid, one is
// given twice, and SQS refuses one.
func ExampleClient_SendBatch() {
	fake := &fakeSQS{SendMessageBatchFn: func(_ context.Context, in *sqs.SendMessageBatchInput) (*sqs.SendMessageBatchOutput, error) {
		out := &sqs.SendMessageBatchOutput{}
		for _, e := range in.Entries {
			fmt.Println("entry", aws.ToString(e.Id))
			if aws.ToString(e.Id) == "1-order_2" { // order.2: entry ids allow no "."
				out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: e.Id,
					Code: aws.String("InternalError"), Message: aws.String("please retry"), SenderFault: false})
				continue
			}
			out.Successful = append(out.Successful, sqstypes.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("m")})
		}
		return out, nil
	}}
	c := client.New(fake, "send-queue-url", client.Policy{DefaultFrom: "60856"})
	reqs := []client.Request{
		{ID: "order:1", To: "17743199144", MMSID: "48211"},
		{ID: "order.2", To: "17743199144", MMSID: "48211"},
		{ID: "order-3", To: "1774", MMSID: "48211"},
		{ID: "order:1", To: "17743199144", MMSID: "48212"},
		{ID: "order-4", To: "17743199144", MMSID: "48211"},
	}
	err := c.SendBatch(context.Background(), reqs)
	var be *client.BatchError
	if errors.As(err, &be) {
		for _, f := range be.Failures {
			fmt.Printf("%d %s retryable=%v: %v\n", f.Index, f.ID, f.Retryable(), f.Err)
		}
	}
	// Output:
	// entry 0-order_1
	// entry 1-order_2
	// entry 2-order-4
	// 1 order.2 retryable=true: sqs refused the entry (server fault): InternalError: please retry
	// 2 order-3 retryable=false: invalid send request "order-3": E110 to: must be an international number of 7-15 digits (a leading + and spaces, - . ( ) between them are allowed)
	// 3 order:1 retryable=false: id given twice in one batch
}

// DecodeEvent reads one message of the delivery-events queue.
func ExampleDecodeEvent() {
	body := `{"id":"order-8812-shipped","event":"delivered","trackingId":"DrXAFP-Ylpc-JZL","code":"N102",
		"status":"Message Sent/Delivered","sentAs":"MMS","to":"17743199144","from":"60856","mmsId":48211,
		"spid":"0001470","handset":"motol7c","aggregatorId":"a1b2","details":"","error":"",
		"occurredAt":"2026-11-24T16:02:11-05:00","recordedAt":"2026-11-24T21:02:12.031Z"}`
	e, err := client.DecodeEvent([]byte(body))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(e.ID, e.Event, e.Code, *e.MMSID)
	fmt.Println("terminal:", e.Terminal(), "final:", e.Final())

	_, err = client.DecodeEvent([]byte(`{"id":"order-1","event":"bounced"}`))
	fmt.Println(err, errors.Is(err, client.ErrUnknownKind))
	_, err = client.DecodeEvent([]byte(`accepted`))
	fmt.Println(errors.Is(err, client.ErrNotEvent))
	// Output:
	// order-8812-shipped delivered N102 48211
	// terminal: false final: true
	// unknown delivery event kind "bounced" true
	// true
}

// A Receiver long-polls the delivery-events queue and deletes each message
// once its handler returns nil.
func ExampleReceiver_Poll() {
	in := newInbox(
		`{"id":"order-1","event":"accepted","trackingId":"T1"}`,
		`{"id":"order-2","event":"rejected","code":"E110","error":"E110 to: must be an international number"}`,
	)
	r := &client.Receiver{API: &in.fake, QueueURL: "events-queue-url"}
	n, err := r.Poll(context.Background(), func(_ context.Context, e client.Event) error {
		switch e.Event {
		case client.Accepted:
			fmt.Println(e.ID, "accepted as", e.TrackingID)
		case client.Rejected:
			fmt.Println(e.ID, "rejected:", e.Code)
		}
		return nil
	})
	fmt.Println(n, err, in.deleted)
	// Output:
	// order-1 accepted as T1
	// order-2 rejected: E110
	// 2 <nil> [a b]
}
