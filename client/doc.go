// Package client is the Go client for applications that send MMS through
// mmsgate: it builds and validates send requests (docs/request.md), puts them on
// the send queue, and decodes the delivery events (docs/events.md) that come
// back on the delivery-events queue.
//
// Validation is the sender's own code (pkg/sendreq), run before anything is
// enqueued, so an invalid request fails in the application at once instead
// of coming back as a rejected event later. The sender validates again; the
// two agree as long as the client's Policy matches the deployment's
// SKYCORE_DEFAULT_FROM and SKYCORE_ENFORCE_CAMPAIGN_CHECK.
//
// Sending:
//
//	cfg, err := config.LoadDefaultConfig(ctx)
//	if err != nil { ... }
//	c := client.New(sqs.NewFromConfig(cfg), sendQueueURL, client.Policy{DefaultFrom: "60856"})
//	err = c.Send(ctx, client.Request{
//		ID:     "order-8812-shipped", // the idempotency key: sent at most once
//		To:     "17743199144",
//		MMSID:  "48211",
//		Slides: []client.Slide{{Slide: 1, Text: "Hi Jane,\nyour parcel is on its way"}},
//	})
//	if errors.Is(err, client.ErrInvalid) {
//		for _, v := range apperr.All(err) {
//			log.Printf("%s %s: %s", v.Code, v.Field, v.Message) // E110 to: must be an international number ...
//		}
//	}
//
// Bulk traffic (a campaign) goes on the bulk lane, which takes only the
// Skycore throughput the send queue's requests leave:
//
//	err = c.Bulk(bulkQueueURL).SendBatch(ctx, campaign)
//
// SendBatch sends many with SendMessageBatch (10 per call) and returns a
// *BatchError naming each request that was not enqueued and why. Sending a
// request again after an error is always safe: the sender sends one id at
// most once.
//
// Receiving:
//
//	r := &client.Receiver{API: sqs.NewFromConfig(cfg), QueueURL: eventsQueueURL}
//	err = r.Run(ctx, func(ctx context.Context, e client.Event) error {
//		switch {
//		case e.Event == client.Rejected:
//			log.Printf("%s rejected: %s %s", e.ID, e.Code, e.Error)
//		case e.Final():
//			log.Printf("%s %s", e.ID, e.Event) // delivered, undelivered, failed
//		}
//		return nil // deletes the message; an error leaves it for redelivery
//	})
//
// Or decode bodies received some other way with DecodeEvent.
//
// The package lives outside pkg/ because the Lambda functions do not link
// it.
package client
