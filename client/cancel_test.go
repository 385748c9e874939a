package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/mmsgate/mmsgate/client"
)

// TestCancel: the body on the queue is exactly {"id","cancel":true}; an
// unusable id never reaches SQS; an SQS failure is returned with the id.
func TestCancel(t *testing.T) {
	ctx := context.Background()
	var got []*sqs.SendMessageInput
	fail := error(nil)
	f := &fakeSQS{SendMessageFn: func(_ context.Context, in *sqs.SendMessageInput) (*sqs.SendMessageOutput, error) {
		if fail != nil {
			return nil, fail
		}
		got = append(got, in)
		return &sqs.SendMessageOutput{}, nil
	}}
	c := client.New(f, "https://sqs/q", policy)
	if err := c.Cancel(ctx, "order-8812-shipped"); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || aws.ToString(got[0].QueueUrl) != "https://sqs/q" || len(got[0].MessageAttributes) != 0 {
		t.Fatalf("sent %+v", got)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(aws.ToString(got[0].MessageBody)), &body); err != nil {
		t.Fatal(err)
	}
	if len(body) != 2 || body["id"] != "order-8812-shipped" || body["cancel"] != true {
		t.Errorf("body %s", aws.ToString(got[0].MessageBody))
	}
	for _, id := range []string{"", "has space", strings.Repeat("x", 65), `a"b`} {
		if err := c.Cancel(ctx, id); !errors.Is(err, client.ErrInvalid) {
			t.Errorf("Cancel(%q) = %v, want ErrInvalid", id, err)
		}
	}
	if len(got) != 1 {
		t.Errorf("an invalid cancel reached SQS")
	}
	fail = errors.New("AccessDenied")
	if err := c.Cancel(ctx, "x1"); err == nil || !strings.Contains(err.Error(), `"x1"`) || !errors.Is(err, fail) {
		t.Errorf("Cancel on SQS failure = %v", err)
	}
}
