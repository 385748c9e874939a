package ops_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/moto"
	"github.com/mmsgate/mmsgate/internal/ops"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// awsCLI runs mmsgate as cmd/mmsgate does: the real SDK configuration
// (ConnectAWS), reading the process environment.
func awsCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cli := &ops.CLI{Stdout: &out, Stderr: &errOut, Getenv: os.Getenv, Connect: ops.ConnectAWS}
	code = cli.Run(t.Context(), args)
	return out.String(), errOut.String(), code
}

// localCredentials leaves the SDK only dummy keys and no region, profile or
// endpoint from the machine: what the help tells a `make dev` user to set.
func localCredentials(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": "",
		"AWS_REGION": "", "AWS_DEFAULT_REGION": "", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_SQS": "", "AWS_ENDPOINT_URL_DYNAMODB": "", "MESSAGES_TABLE": "",
	} {
		t.Setenv(k, v)
	}
}

// TestLocalStandIns runs the commands against the local stand-ins (moto's
// SQS, dynalite) through the SDK, as an operator does against `make dev`.
func TestLocalStandIns(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server and Node (dynalite)")
	}
	if _, err := moto.Binary(); err != nil {
		t.Skip(err)
	}
	env, err := localenv.Start(t.Context(), localenv.Options{Moto: true})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Close()
	localCredentials(t)

	t.Run("redrive", func(t *testing.T) {
		ctx := t.Context()
		q := env.SQSClient()
		body := `{"id":"redrive-1","to":"17743199144","mmsId":1000,"slides":[{"slide":1,"text":"Hi"}]}`
		if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(env.DLQURL), MessageBody: aws.String(body),
			MessageAttributes: map[string]sqstypes.MessageAttributeValue{
				"error": str("expired: SEND_RETRY_WINDOW spent"), "originalMessageId": str("orig-9"),
				"mmsgate-handoff": str(`{"t":"X","first":1}`), "tenant": str("acme"),
			}}); err != nil {
			t.Fatal(err)
		}

		// SQS on moto, the table on dynalite: one endpoint variable each.
		t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", env.DynamoURL)
		out, errOut, code := awsCLI(t, "--endpoint", env.SQSURL, "redrive", "--dlq", env.DLQURL, "--to", env.SendQueueURL, "--dry-run")
		if code != 0 || !strings.Contains(out, "1 revivable") || !strings.Contains(out, "id redrive-1") ||
			!strings.Contains(out, "expired: SEND_RETRY_WINDOW spent") || !strings.Contains(out, "originalMessageId orig-9") {
			t.Fatalf("redrive --dry-run = exit %d:\n%s\nstderr:\n%s", code, out, errOut)
		}
		time.Sleep(1500 * time.Millisecond) // the peek hides a message for a second
		if c := counts(t, env, env.DLQURL); c.Visible != 1 || c.InFlight != 0 {
			t.Fatalf("DLQ a second after the dry run = %+v; want the message there and visible", c)
		}
		if c := counts(t, env, env.SendQueueURL); c.Total() != 0 {
			t.Fatalf("send queue after the dry run = %+v; want empty", c)
		}

		// The SDK's own variable, instead of --endpoint.
		t.Setenv("AWS_ENDPOINT_URL_SQS", env.SQSURL)
		out, errOut, code = awsCLI(t, "redrive", "--dlq", env.DLQURL, "--to", env.SendQueueURL)
		if code != 0 || !strings.Contains(out, "moved 1 message(s)") {
			t.Fatalf("redrive = exit %d:\n%s\nstderr:\n%s", code, out, errOut)
		}
		got, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(env.SendQueueURL), MaxNumberOfMessages: 10,
			WaitTimeSeconds: 2, MessageAttributeNames: []string{"All"}})
		if err != nil || len(got.Messages) != 1 {
			t.Fatalf("send queue = %+v, %v; want the one message", got, err)
		}
		m := got.Messages[0]
		if aws.ToString(m.Body) != body {
			t.Errorf("body on the send queue = %s, want %s", aws.ToString(m.Body), body)
		}
		var names []string
		for name := range m.MessageAttributes {
			names = append(names, name)
		}
		if len(names) != 1 || names[0] != "tenant" {
			t.Errorf("attributes on the send queue = %v, want only tenant", names)
		}
		if c := counts(t, env, env.DLQURL); c.Total() != 0 {
			t.Errorf("DLQ after the move = %+v; want empty", c)
		}
	})

	t.Run("redrive a mixed DLQ after an outage", func(t *testing.T) {
		ctx := t.Context()
		q := env.SQSClient()
		f := onTable(env.DynamoDB())
		scenarios["expired after 23 attempts"](t, f) // order-8
		scenarios["suppressed"](t, f)                // order-7, rejected
		body := func(id string) string {
			return `{"id":"` + id + `","to":"17743199144","mmsId":1000,"slides":[{"slide":1,"text":"Hi"}]}`
		}
		for _, b := range []string{body("order-8"), body("order-7"), body("fresh-1"), `{"id":"no good!"}`} {
			if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(env.DLQURL), MessageBody: aws.String(b)}); err != nil {
				t.Fatal(err)
			}
		}
		t.Setenv("AWS_ENDPOINT_URL_SQS", env.SQSURL)
		t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", env.DynamoURL)
		out, errOut, code := awsCLI(t, "redrive", "--dlq", env.DLQURL, "--to", env.SendQueueURL, "--dry-run")
		for _, want := range []string{"final EXPIRED", "--renew sends it as order-8.r1", "final REJECTED", "revivable", "no valid id",
			"4 message(s) listed", "1 revivable", "2 final (2 would be sent again under a new id with --renew)", "1 without a valid id, 0 unknown"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Fatalf("redrive --dry-run = exit %d, lacks %q:\n%s\nstderr:\n%s", code, want, out, errOut)
			}
		}
		if c := counts(t, env, env.DLQURL); c.Total() != 4 {
			t.Fatalf("DLQ after the dry run = %+v; want the 4 there", c)
		}
		time.Sleep(1500 * time.Millisecond) // the peek's one-second visibility

		out, errOut, code = awsCLI(t, "redrive", "--dlq", env.DLQURL, "--to", env.SendQueueURL, "--renew")
		if code != ops.ExitFailure || !strings.Contains(out, "moved 3 message(s)") || !strings.Contains(out, "(2 under a new id)") ||
			!strings.Contains(errOut, "1 message(s) kept") {
			t.Fatalf("redrive --renew = exit %d:\n%s\nstderr:\n%s", code, out, errOut)
		}
		got := map[string]string{} // id → renewedFrom
		for len(got) < 3 {
			r, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(env.SendQueueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 2})
			if err != nil || len(r.Messages) == 0 {
				t.Fatalf("send queue: %v; have %v", err, got)
			}
			for _, m := range r.Messages {
				var b struct {
					ID       string
					Metadata struct{ RenewedFrom string }
				}
				if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &b); err != nil {
					t.Fatal(err)
				}
				got[b.ID] = b.Metadata.RenewedFrom
			}
		}
		if diff := cmp.Diff(map[string]string{"order-8.r1": "order-8", "order-7.r1": "order-7", "fresh-1": ""}, got); diff != "" {
			t.Errorf("on the send queue, id → renewedFrom (-want +got):\n%s", diff)
		}
		if c := counts(t, env, env.DLQURL); c.Total() != 1 {
			t.Errorf("DLQ after the redrive = %+v; want the one without a valid id", c)
		}
	})

	t.Run("status", func(t *testing.T) {
		f := onTable(env.DynamoDB())
		scenarios["delivered"](t, f)
		out, errOut, code := awsCLI(t, "--endpoint", env.DynamoURL, "status", "order-1")
		if code != 0 {
			t.Fatalf("status = exit %d; stderr:\n%s", code, errOut)
		}
		golden(t, "status/delivered.txt", out) // the same as on memdb

		_, errOut, code = awsCLI(t, "--endpoint", env.DynamoURL, "status", "no-such-id")
		if code != ops.ExitFailure || !strings.Contains(errOut, `no request with id "no-such-id"`) {
			t.Errorf("status of an unknown id = exit %d, stderr %q", code, errOut)
		}
	})

	t.Run("suppress", func(t *testing.T) {
		st := store.New(env.DynamoDB(), localenv.Table, 0) // today's clock, as the CLI's
		if err := st.Suppress(t.Context(), store.SuppressionKey("17743199144", ""), "E110", "order-1", 72*time.Hour); err != nil {
			t.Fatal(err)
		}
		t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", env.DynamoURL)
		out, errOut, code := awsCLI(t, "suppress", "list")
		if code != 0 || !regexp.MustCompile(`17743199144 +\(all\) +\(all\) +E110 +E110 .* order-1`).MatchString(out) {
			t.Fatalf("suppress list = exit %d:\n%s\nstderr:\n%s", code, out, errOut)
		}
		if out, errOut, code := awsCLI(t, "suppress", "lift", "17743199144"); code != 0 {
			t.Fatalf("suppress lift = exit %d:\n%s\nstderr:\n%s", code, out, errOut)
		}
		if out, _, _ := awsCLI(t, "suppress", "list"); out != "no live suppressions\n" {
			t.Errorf("suppress list after the lift:\n%s", out)
		}
		if _, errOut, code := awsCLI(t, "suppress", "lift", "17743199144"); code != ops.ExitFailure || !strings.Contains(errOut, "no live suppression") {
			t.Errorf("a second lift = exit %d, stderr %q", code, errOut)
		}
		if out, errOut, code := awsCLI(t, "suppress", "add", "17743199144", "--from", "60856", "--reason", "by phone"); code != 0 {
			t.Fatalf("suppress add = exit %d:\n%s\nstderr:\n%s", code, out, errOut)
		}
		out, _, _ = awsCLI(t, "suppress", "list")
		if !regexp.MustCompile(`17743199144 +60856 +\(all\) +OPTED_OUT +operator .*\(until lifted\) +- +by phone`).MatchString(out) {
			t.Errorf("suppress list after add:\n%s", out)
		}
		if out, errOut, code := awsCLI(t, "suppress", "lift", "17743199144", "--from", "60856"); code != 0 {
			t.Fatalf("suppress lift --from = exit %d:\n%s\nstderr:\n%s", code, out, errOut)
		}
	})
}

func counts(t *testing.T, env *localenv.Env, url string) localenv.Counts {
	t.Helper()
	c, err := env.QueueCounts(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
