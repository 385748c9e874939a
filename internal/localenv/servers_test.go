package localenv_test

import (
	"encoding/json"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/moto"
)

// TestServersLendEmptied: an Env on a borrowed moto_server starts as a
// fresh one would, whatever the Env before it left (an item, a table, a
// message on every queue, another queue, another secret), Envs open
// together never share a process, and Servers.Close stops the idle ones.
func TestServersLendEmptied(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and dynalite")
	}
	if _, err := moto.Binary(); err != nil {
		t.Skip(err)
	}
	ctx := t.Context()
	var pool localenv.Servers
	defer pool.Close()
	start := func() *localenv.Env {
		t.Helper()
		e, err := localenv.Start(ctx, localenv.Options{Servers: &pool, PostbackToken: "tok-a"})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	dirty := func(e *localenv.Env) {
		t.Helper()
		db := e.DynamoDB()
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(localenv.Table),
			Item: map[string]dbtypes.AttributeValue{"pk": &dbtypes.AttributeValueMemberS{Value: "left-over"}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: aws.String("other"),
			AttributeDefinitions: []dbtypes.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: dbtypes.ScalarAttributeTypeS}},
			KeySchema:            []dbtypes.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: dbtypes.KeyTypeHash}},
			BillingMode:          dbtypes.BillingModePayPerRequest}); err != nil {
			t.Fatal(err)
		}
		for _, url := range []string{e.SendQueueURL, e.DLQURL, e.EventsQueueURL, e.ReceiptQueueURL, e.BulkSendQueueURL, e.BulkDLQURL} {
			if _, err := e.SQSClient().SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("left-over")}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := e.SQSClient().CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("other")}); err != nil {
			t.Fatal(err)
		}
		e.PutSecret("changed-key", "changed-token")
	}
	first := start()
	dyn, mo := first.Dynalite, first.Moto
	dirty(first)

	// Open together: processes of its own.
	second := start()
	if second.Dynalite == dyn || second.Moto == mo {
		t.Errorf("an Env open alongside another shares its processes")
	}
	second.Close()
	first.Close()

	third := start()
	defer third.Close()
	if third.Dynalite == dyn || third.Dynalite == second.Dynalite {
		t.Errorf("the third Env borrowed a dynalite, want a fresh one")
	}
	if third.Moto != mo && third.Moto != second.Moto {
		t.Errorf("the third Env started a moto_server of its own, want one given back")
	}
	if tables, err := third.DynamoDB().ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil || len(tables.TableNames) != 1 || tables.TableNames[0] != localenv.Table {
		t.Errorf("ListTables = %v; want only %s", tableNames(tables), localenv.Table)
	}
	scan, err := third.DynamoDB().Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(localenv.Table)})
	if err != nil {
		t.Fatal(err)
	} else if scan.Count != 0 {
		t.Errorf("Scan = %d items, want an empty table", scan.Count)
	}
	if queues, err := third.SQSClient().ListQueues(ctx, &sqs.ListQueuesInput{}); err != nil {
		t.Fatal(err)
	} else if len(queues.QueueUrls) != 6 {
		t.Errorf("ListQueues = %v, want the 6 of a fresh Env", queues.QueueUrls)
	}
	for _, url := range []string{third.SendQueueURL, third.DLQURL, third.EventsQueueURL, third.ReceiptQueueURL, third.BulkSendQueueURL, third.BulkDLQURL} {
		c, err := third.QueueCounts(ctx, url)
		if err != nil || c.Total() != 0 {
			t.Errorf("%s: %+v, %v; want empty", url, c, err)
		}
	}
	sec, err := third.SecretsManager().GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(localenv.SecretID)})
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]string
	if err := json.Unmarshal([]byte(aws.ToString(sec.SecretString)), &keys); err != nil || keys["api_key"] != "sim-api-key" || keys["postback_token"] != "tok-a" {
		t.Errorf("secret = %s, %v; want the fresh Env's", aws.ToString(sec.SecretString), err)
	}

	// The idle pair (the one third did not take) is stopped by Close.
	idle := second.Moto
	if third.Moto == second.Moto {
		idle = mo
	}
	pool.Close()
	if err := syscall.Kill(idle.PID(), 0); err == nil {
		t.Errorf("an idle moto_server (pid %d) outlives Servers.Close", idle.PID())
	}
	if err := syscall.Kill(third.Moto.PID(), 0); err != nil {
		t.Errorf("the moto_server of an open Env was stopped by Servers.Close: %v", err)
	}
}

func tableNames(out *dynamodb.ListTablesOutput) []string {
	if out == nil {
		return nil
	}
	return out.TableNames
}
