package ops_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/mmsgate/mmsgate/internal/ops"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// TestCancelCommand: the cancel body goes to the queue given, with a note
// when the record shows the cancel cannot win; bad input sends nothing.
func TestCancelCommand(t *testing.T) {
	f := newFixture(t)
	var sent []*sqs.SendMessageInput
	f.sqs.SendMessageFn = func(in *sqs.SendMessageInput) (*sqs.SendMessageOutput, error) {
		sent = append(sent, in)
		return &sqs.SendMessageOutput{MessageId: aws.String("m-1")}, nil
	}
	const q = "https://sqs.eu-west-1.amazonaws.com/123456789012/mmsgate-send"

	out, errOut, code := f.run(t, "cancel", "--queue", q, "order-1")
	if code != ops.ExitOK || out != "cancel of order-1 queued on "+q+" (message m-1)\n" {
		t.Fatalf("cancel = %d %q %q", code, out, errOut)
	}
	if len(sent) != 1 || aws.ToString(sent[0].QueueUrl) != q || aws.ToString(sent[0].MessageBody) != `{"id":"order-1","cancel":true}` {
		t.Fatalf("sent %+v", sent)
	}

	// A final id: queued all the same (the sender decides), with a note.
	ctx := context.Background()
	f.st.Claim(ctx, "done", store.Claim{Owner: "s", Lease: f.clock.in(time.Minute)})
	f.st.Reject(ctx, "done", "s", f.clock.in(time.Minute), store.Outcome{Code: "E620"})
	out, _, code = f.run(t, "cancel", "done", "--queue", q)
	if code != ops.ExitOK || !strings.Contains(out, "note: done is already final (REJECTED)") {
		t.Errorf("cancel of a final id = %d %q", code, out)
	}
	f.st.Claim(ctx, "busy", store.Claim{Owner: "s", Lease: f.clock.in(time.Minute)})
	if out, _, _ = f.run(t, "cancel", "busy", "--queue", q); !strings.Contains(out, "being called right now") {
		t.Errorf("cancel of a claimed id = %q", out)
	}
	if out, _, _ = f.run(t, "--json", "cancel", "busy", "--queue", q); !strings.Contains(out, `"messageId": "m-1"`) && !strings.Contains(out, `"messageId":"m-1"`) {
		t.Errorf("--json = %q", out)
	}
	n := len(sent)
	for name, args := range map[string][]string{
		"no id":    {"cancel", "--queue", q},
		"two ids":  {"cancel", "--queue", q, "a", "b"},
		"no queue": {"cancel", "a"},
		"bad id":   {"cancel", "--queue", q, "has space"},
	} {
		if _, errOut, code := f.run(t, args...); code != ops.ExitUsage {
			t.Errorf("%s: exit %d, stderr %q", name, code, errOut)
		}
	}
	if len(sent) != n {
		t.Error("a refused command line sent something")
	}
	if out, _, code := f.run(t, "help", "cancel"); code != ops.ExitOK || !strings.Contains(out, "-queue string") {
		t.Errorf("help cancel = %d %q", code, out)
	}
}
