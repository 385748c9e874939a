package localenv_test

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/moto"
	"github.com/mmsgate/mmsgate/pkg/delivery"
)

// TestMoto: the moto-backed environment has what the functions are told
// (docs/secrets.md, docs/configuration.md): the queues with the send queue's redrive, one secret
// with both keys under both variables, and events it can drain.
func TestMoto(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and dynalite")
	}
	if _, err := moto.Binary(); err != nil {
		t.Skip(err)
	}
	e, err := localenv.Start(t.Context(), localenv.Options{Moto: true, MaxReceive: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	t.Run("environment", func(t *testing.T) {
		env := e.Environ()
		for _, want := range []string{"SKYCORE_SECRET_ID=" + localenv.SecretID, "POSTBACK_SECRET_ID=" + localenv.SecretID,
			"SEND_QUEUE_URL=" + e.SendQueueURL, "DEAD_LETTER_QUEUE_URL=" + e.DLQURL, "DELIVERY_EVENTS_QUEUE_URL=" + e.EventsQueueURL,
			"AWS_ENDPOINT_URL_SQS=" + e.Moto.URL, "AWS_ENDPOINT_URL_SECRETS_MANAGER=" + e.Moto.URL} {
			if !slices.Contains(env, want) {
				t.Errorf("Environ() lacks %s", want)
			}
		}
	})

	t.Run("redrive", func(t *testing.T) {
		out, err := e.SQSClient().GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(e.SendQueueURL),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameRedrivePolicy}})
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Target string `json:"deadLetterTargetArn"`
			Max    any    `json:"maxReceiveCount"`
		}
		json.Unmarshal([]byte(out.Attributes["RedrivePolicy"]), &p)
		if !strings.HasSuffix(p.Target, ":"+localenv.SendDLQ) || p.Max == nil || (p.Max != "3" && p.Max != float64(3)) {
			t.Errorf("RedrivePolicy = %s, want the DLQ after 3 receives", out.Attributes["RedrivePolicy"])
		}
	})

	t.Run("secret", func(t *testing.T) {
		e.PutSecret("k2", "t2")
		out, err := e.SecretsManager().GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(localenv.SecretID)})
		if err != nil || aws.ToString(out.SecretString) != `{"api_key":"k2","postback_token":"t2"}` {
			t.Errorf("secret = %v, %v", out, err)
		}
	})

	t.Run("drain events", func(t *testing.T) {
		p := delivery.NewPublisher(e.SQSClient(), e.EventsQueueURL)
		for _, id := range []string{"a", "b"} {
			if err := p.Publish(t.Context(), delivery.Event{ID: id, Event: delivery.Accepted}); err != nil {
				t.Fatal(err)
			}
		}
		evs, err := e.DrainEvents()
		if err != nil || len(evs) != 2 || evs[0].ID != "a" || evs[1].ID != "b" {
			t.Fatalf("DrainEvents() = %+v, %v; want a, b", evs, err)
		}
		if c, _ := e.QueueCounts(t.Context(), e.EventsQueueURL); c.Total() != 0 {
			t.Errorf("after the drain: %+v", c)
		}
	})

	t.Run("save and reload the queues", func(t *testing.T) {
		q := e.SQSClient()
		q.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(e.SendQueueURL), MessageBody: aws.String(`{"id":"kept"}`)})
		q.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(e.DLQURL), MessageBody: aws.String("bad"),
			MessageAttributes: map[string]types.MessageAttributeValue{"error": {DataType: aws.String("String"), StringValue: aws.String("why")}}})
		file := filepath.Join(t.TempDir(), "queues.json")
		if n, err := e.SaveQueues(t.Context(), file); err != nil || n != 2 {
			t.Fatalf("SaveQueues = %d, %v; want 2", n, err)
		}
		if n, err := e.LoadQueues(t.Context(), file); err != nil || n != 2 {
			t.Fatalf("LoadQueues = %d, %v; want 2", n, err)
		}
		dlq, err := e.ReceiveAll(t.Context(), e.DLQURL, 0)
		if err != nil || len(dlq) != 1 || aws.ToString(dlq[0].MessageAttributes["error"].StringValue) != "why" {
			t.Errorf("DLQ after the reload: %+v, %v", dlq, err)
		}
	})
}
