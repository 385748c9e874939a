package ops

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/mmsgate/mmsgate/client"
	"github.com/mmsgate/mmsgate/pkg/store"
)

const cancelUsage = `Usage: mmsgate cancel [--queue URL] <id>

Puts {"id": "<id>", "cancel": true} on the send queue (--queue, default
$SEND_QUEUE_URL). The sender cancels the id when no Skycore call of it has
started and none may have reached Skycore (also before the request itself
arrives, or while it waits for its sendAt): it ends with the event
"canceled" and is never sent. Otherwise the cancel changes nothing (the
sender logs and counts it) and the id's own terminal event is the outcome.
The command only queues the cancel; mmsgate status <id> shows what came of
it. Before queuing it reads the id's record and says when the cancel can no
longer win (final, being called, in doubt).

Flags:
`

// cancel queues a cancel of one id.
func (c *CLI) cancel(ctx context.Context, g *Global, args []string) int {
	fs := c.flags("cancel", cancelUsage, g)
	queue := fs.String("queue", c.Getenv("SEND_QUEUE_URL"), "the send queue's URL (SEND_QUEUE_URL)")
	pos, err := parseArgs(fs, args, true)
	if err != nil {
		return c.parseFailed(err)
	}
	switch {
	case len(pos) != 1:
		return c.usageError("cancel wants one id")
	case *queue == "":
		return c.usageError("cancel wants --queue or SEND_QUEUE_URL")
	}
	id := pos[0]
	body, err := client.CancelBody(id)
	if err != nil {
		return c.usageError("%v", err)
	}
	if g.Region == "" && g.Endpoint == "" {
		g.Region = regionOfQueue(*queue)
	}
	cl, st, err := c.connect(ctx, g)
	if err != nil {
		return c.failed(err)
	}
	// What the record says now: a hint only, the sender decides.
	note := ""
	if m, err := st.Get(ctx, id); err != nil {
		note = fmt.Sprintf("cannot read the record (%v)", err)
	} else if m != nil {
		switch {
		case m.Final():
			note = fmt.Sprintf("%s is already final (%s): the cancel will change nothing", id, m.State)
		case m.Held(c.Now()):
			note = fmt.Sprintf("%s is being called right now: the cancel will most likely change nothing", id)
		case m.State == store.StateInDoubt:
			note = fmt.Sprintf("%s is in doubt (a call may have reached Skycore): the cancel will change nothing", id)
		}
	}
	out, err := cl.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: queue, MessageBody: aws.String(body)})
	if err != nil {
		return c.failed(fmt.Errorf("cancel %s: %w", id, err))
	}
	if g.JSON {
		err = writeJSON(c.Stdout, struct {
			ID        string `json:"id"`
			Queue     string `json:"queue"`
			MessageID string `json:"messageId"`
			Note      string `json:"note"`
		}{id, *queue, aws.ToString(out.MessageId), note})
		if err != nil {
			return c.failed(err)
		}
		return ExitOK
	}
	fmt.Fprintf(c.Stdout, "cancel of %s queued on %s (message %s)\n", id, *queue, aws.ToString(out.MessageId))
	if note != "" {
		fmt.Fprintf(c.Stdout, "note: %s\n", note)
	}
	return ExitOK
}
