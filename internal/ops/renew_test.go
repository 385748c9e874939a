package ops_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/ops"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
)

func TestRenewID(t *testing.T) {
	long := strings.Repeat("x", sendreq.MaxIDLen-2)
	tests := map[string]struct {
		id, want string
		ok       bool
	}{
		"first renewal":            {"order-1", "order-1.r1", true},
		"a renewal renewed":        {"order-1.r1", "order-1.r2", true},
		"tenth":                    {"order-1.r9", "order-1.r10", true},
		"not a renewal suffix":     {"order-1.r0", "order-1.r0.r1", true},
		"dot r in the middle":      {"a.r1b", "a.r1b.r1", true},
		"too long to renew":        {long, long + ".r1", false},
		"an id that is all digits": {"12345", "12345.r1", true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := ops.RenewID(tt.id)
			if got != tt.want || ok != tt.ok {
				t.Errorf("RenewID(%q) = %q, %v; want %q, %v", tt.id, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestRenewBody(t *testing.T) {
	tests := map[string]struct {
		body    string
		want    map[string]any
		wantErr string
	}{
		"no metadata": {
			body: `{"id":"o-1","to":"17743199144","mmsId":1000,"slides":[{"slide":1,"text":"a <b> & c"}]}`,
			want: map[string]any{"id": "o-1.r1", "to": "17743199144", "mmsId": 1000.0,
				"slides": []any{map[string]any{"slide": 1.0, "text": "a <b> & c"}}, "metadata": map[string]any{"renewedFrom": "o-1"}},
		},
		"metadata kept, renewedFrom added": {
			body: `{"id":"o-1","to":"1","mmsId":1,"metadata":{"tenant":"acme"}}`,
			want: map[string]any{"id": "o-1.r1", "to": "1", "mmsId": 1.0, "metadata": map[string]any{"tenant": "acme", "renewedFrom": "o-1"}},
		},
		"metadata null": {
			body: `{"id":"o-1","metadata":null}`,
			want: map[string]any{"id": "o-1.r1", "metadata": map[string]any{"renewedFrom": "o-1"}},
		},
		"metadata not an object": {body: `{"id":"o-1","metadata":"x"}`, wantErr: "metadata is not an object"},
		"not an object":          {body: `["o-1"]`, wantErr: "not a JSON object"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ops.RenewBody(tt.body, "o-1", "o-1.r1")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("RenewBody = %q, %v; want an error %q", got, err, tt.wantErr)
				}
				return
			}
			var m map[string]any
			if err != nil || json.Unmarshal([]byte(got), &m) != nil {
				t.Fatalf("RenewBody = %q, %v", got, err)
			}
			if diff := cmp.Diff(tt.want, m); diff != "" {
				t.Errorf("renewed body (-want +got):\n%s", diff)
			}
			if sendreq.PeekID([]byte(got)) != "o-1.r1" {
				t.Errorf("the sender reads id %q from %s", sendreq.PeekID([]byte(got)), got)
			}
		})
	}
}

// mixedDLQ is a dead-letter queue after an outage, over the records the
// status scenarios leave: each kind of message once.
func mixedDLQ(t *testing.T, f *fixture) *queueModel {
	t.Helper()
	for _, s := range []string{"delivered", "in progress", "suppressed", "expired after 23 attempts", "in doubt"} {
		scenarios[s](t, f)
	}
	body := func(id string) *string {
		return aws.String(`{"id":"` + id + `","to":"17743199144","mmsId":1000,"slides":[{"slide":1,"text":"Hi"}]}`)
	}
	return newQueueModel(
		sqstypes.Message{MessageId: aws.String("m-new"), Body: body("order-new")}, // no record
		sqstypes.Message{MessageId: aws.String("m-ip"), Body: body("order-3")},    // INPROGRESS
		sqstypes.Message{MessageId: aws.String("m-acc"), Body: body("order-1")},   // ACCEPTED
		sqstypes.Message{MessageId: aws.String("m-rej"), Body: body("order-7")},   // REJECTED (suppressed)
		sqstypes.Message{MessageId: aws.String("m-exp"), Body: body("order-8"), // EXPIRED
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{"error": str("expired: SEND_RETRY_WINDOW spent"), "tenant": str("acme")}},
		sqstypes.Message{MessageId: aws.String("m-doubt"), Body: body("order-5")}, // INDOUBT
		sqstypes.Message{MessageId: aws.String("m-badid"), Body: aws.String(`{"id":"bad id!","to":"1"}`),
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{"error": str("E100: id: invalid")}},
	)
}

// verdicts is each listed message's id → verdict, state and renewal.
func verdicts(res *ops.RedriveResult) map[string]string {
	out := map[string]string{}
	for _, d := range res.Messages {
		out[d.MessageID] = strings.TrimSpace(d.Verdict + " " + d.State + " " + d.RenewAs)
	}
	return out
}

func TestRedriveDryRunVerdicts(t *testing.T) {
	f := newFixture(t)
	q := mixedDLQ(t, f)
	res, err := ops.Redrive(context.Background(), q.fake(), f.st, ops.RedriveOptions{DLQ: dlqURL, To: sendURL, DryRun: true, Wait: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"m-new": "revivable", "m-ip": "revivable INPROGRESS", "m-doubt": "revivable INDOUBT",
		"m-acc": "final ACCEPTED", "m-rej": "final REJECTED order-7.r1", "m-exp": "final EXPIRED order-8.r1",
		"m-badid": "no valid id",
	}
	if diff := cmp.Diff(want, verdicts(res)); diff != "" {
		t.Errorf("verdicts (-want +got):\n%s", diff)
	}
	if len(q.sent) != 0 || len(q.msgs) != 7 || strings.Join(q.log, ",") != "receive 7" {
		t.Errorf("the dry run changed something: sent %d, %d left, calls %v", len(q.sent), len(q.msgs), q.log)
	}
}

func TestRedriveKeepsFinalWithoutRenew(t *testing.T) {
	f := newFixture(t)
	q := mixedDLQ(t, f)
	f.sqs = q.fake()
	out, errOut, code := f.run(t, "redrive", "--dlq", dlqURL, "--to", sendURL)
	if code != ops.ExitFailure || !strings.Contains(errOut, "4 message(s) kept on the dead-letter queue") {
		t.Fatalf("redrive = exit %d; stderr:\n%s\nstdout:\n%s", code, errOut, out)
	}
	for _, line := range []string{"kept: order-8 is final (EXPIRED), the sender would ignore it; --renew sends it as order-8.r1",
		"kept: Skycore accepted it", "moved 3 message(s)", "kept 4 message(s) on the dead-letter queue"} {
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
	var sent []string
	for _, in := range q.sent {
		sent = append(sent, peek(in.MessageBody))
	}
	if diff := cmp.Diff([]string{"order-new", "order-3", "order-5"}, sent); diff != "" {
		t.Errorf("sent (-want +got):\n%s", diff)
	}
	for _, m := range q.msgs {
		if m.hidden {
			t.Errorf("%s left hidden on the DLQ", aws.ToString(m.m.MessageId))
		}
	}
	if len(q.msgs) != 4 {
		t.Errorf("%d left on the DLQ, want the 4 kept", len(q.msgs))
	}
}

func TestRedriveRenew(t *testing.T) {
	f := newFixture(t)
	q := mixedDLQ(t, f)
	f.sqs = q.fake()
	out, errOut, code := f.run(t, "redrive", "--dlq", dlqURL, "--to", sendURL, "--renew")
	// Still kept: the accepted one and the one without a valid id.
	if code != ops.ExitFailure || !strings.Contains(errOut, "2 message(s) kept") {
		t.Fatalf("redrive --renew = exit %d; stderr:\n%s\nstdout:\n%s", code, errOut, out)
	}
	if !strings.Contains(out, "moved 5 message(s) to "+sendURL+" (2 under a new id)") {
		t.Errorf("summary:\n%s", out)
	}
	bodies := map[string]map[string]any{}
	for _, in := range q.sent {
		var m map[string]any
		if err := json.Unmarshal([]byte(aws.ToString(in.MessageBody)), &m); err != nil {
			t.Fatal(err)
		}
		bodies[m["id"].(string)] = m
	}
	for newID, old := range map[string]string{"order-8.r1": "order-8", "order-7.r1": "order-7"} {
		b, ok := bodies[newID]
		if !ok {
			t.Errorf("%s was not sent; sent %v", newID, bodies)
			continue
		}
		if diff := cmp.Diff(map[string]any{"renewedFrom": old}, b["metadata"]); diff != "" {
			t.Errorf("%s metadata (-want +got):\n%s", newID, diff)
		}
		if b["to"] != "17743199144" || b["mmsId"] != 1000.0 {
			t.Errorf("%s body changed beyond id and metadata: %v", newID, b)
		}
	}
	for _, id := range []string{"order-8", "order-7", "order-1", "order-1.r1"} {
		if _, ok := bodies[id]; ok {
			t.Errorf("%s was sent: a final id, or an accepted one renewed", id)
		}
	}
	// The application's attribute goes with the renewed body.
	for _, in := range q.sent {
		if peek(in.MessageBody) == "order-8.r1" && aws.ToString(in.MessageAttributes["tenant"].StringValue) != "acme" {
			t.Errorf("renewed message attributes = %v", in.MessageAttributes)
		}
	}
}

// A run that dies between the renewed send and the delete is run again:
// it sends the same new id (the sender ignores the second), never another.
func TestRedriveRenewAgainAfterACrash(t *testing.T) {
	f := newFixture(t)
	scenarios["expired after 23 attempts"](t, f)
	q := newQueueModel(sqstypes.Message{MessageId: aws.String("m-exp"), Body: aws.String(`{"id":"order-8","to":"17743199144","mmsId":1000}`)})
	fake := q.fake()
	deleteOK := fake.DeleteMessageFn
	fake.DeleteMessageFn = func(*sqs.DeleteMessageInput) (*sqs.DeleteMessageOutput, error) {
		return nil, errors.New("connection reset")
	}
	if _, err := ops.Redrive(context.Background(), fake, f.st, ops.RedriveOptions{DLQ: dlqURL, To: sendURL, Renew: true, Wait: -1}, nil); err == nil {
		t.Fatal("the failed delete was not reported")
	}
	for _, m := range q.msgs {
		m.hidden = false // its visibility ran out
	}
	fake.DeleteMessageFn = deleteOK
	if _, err := ops.Redrive(context.Background(), fake, f.st, ops.RedriveOptions{DLQ: dlqURL, To: sendURL, Renew: true, Wait: -1}, nil); err != nil {
		t.Fatal(err)
	}
	if len(q.sent) != 2 || aws.ToString(q.sent[0].MessageBody) != aws.ToString(q.sent[1].MessageBody) || peek(q.sent[0].MessageBody) != "order-8.r1" {
		t.Errorf("sent %d: want the same order-8.r1 body twice", len(q.sent))
	}
	if len(q.msgs) != 0 {
		t.Errorf("%d left on the DLQ", len(q.msgs))
	}
}

func TestRedriveRenewFlags(t *testing.T) {
	f := newFixture(t)
	_, errOut, code := f.run(t, "redrive", "--dlq", dlqURL, "--to", sendURL, "--native", "--renew")
	if code != ops.ExitUsage || !strings.Contains(errOut, "--renew does not apply to --native") {
		t.Errorf("--native --renew = exit %d, %s", code, errOut)
	}
}
