package moto_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/mmsgate/mmsgate/internal/dynalite"
	"github.com/mmsgate/mmsgate/internal/fakesqs"
)

// DynamoDB: moto against dynalite, on what pkg/store does (conditional
// writes, the item back on a failed condition, TTL) and on speed. The
// figures are in BENCHMARKS.md; dynalite stays (see there).

func dynamoBackends(t *testing.T) map[string]*dynamodb.Client {
	t.Helper()
	d, err := dynalite.Start(t.Context())
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { d.Close() })
	client := func(url string) *dynamodb.Client {
		return dynamodb.NewFromConfig(cfg(), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(url); o.RetryMaxAttempts = 1 })
	}
	return map[string]*dynamodb.Client{"dynalite": client(d.URL), "moto": client(server.URL)}
}

func table(t *testing.T, c *dynamodb.Client) string {
	t.Helper()
	name := fmt.Sprintf("t%d", time.Now().UnixNano())
	_, err := c.CreateTable(t.Context(), &dynamodb.CreateTableInput{TableName: aws.String(name), BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}}})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func claim(ctx context.Context, c *dynamodb.Client, tbl, pk string, allOld bool) error {
	in := &dynamodb.PutItemInput{TableName: aws.String(tbl),
		Item:                map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "state": &types.AttributeValueMemberS{Value: "CLAIMED"}},
		ConditionExpression: aws.String("attribute_not_exists(pk)")}
	if allOld {
		in.ReturnValuesOnConditionCheckFailure = types.ReturnValuesOnConditionCheckFailureAllOld
	}
	_, err := c.PutItem(ctx, in)
	return err
}

// TestDynamoDBFidelity: both refuse a second claim with
// ConditionalCheckFailedException; only moto returns the item that failed
// the condition and takes UpdateTimeToLive (pkg/store uses neither).
func TestDynamoDBFidelity(t *testing.T) {
	for name, c := range dynamoBackends(t) {
		t.Run(name, func(t *testing.T) {
			tbl := table(t, c)
			if err := claim(t.Context(), c, tbl, "msg#a", false); err != nil {
				t.Fatal(err)
			}
			err := claim(t.Context(), c, tbl, "msg#a", true)
			var ccf *types.ConditionalCheckFailedException
			if !errors.As(err, &ccf) {
				t.Fatalf("second claim: %v, want ConditionalCheckFailedException", err)
			}
			_, hasItem := ccf.Item["state"]
			_, ttlErr := c.UpdateTimeToLive(t.Context(), &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(tbl),
				TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String("exp"), Enabled: aws.Bool(true)}})
			want := map[string]bool{"dynalite": false, "moto": true}[name]
			if hasItem != want || (ttlErr == nil) != want {
				t.Errorf("item on a failed condition %v, UpdateTimeToLive works %v (%v); want %v for %s", hasItem, ttlErr == nil, ttlErr, want, name)
			}
		})
	}
}

// TestDynamoDBThroughput measures conditional puts per second with 10
// concurrent workers (MMSGATE_MEASURE=1; it prints the BENCHMARKS.md row).
func TestDynamoDBThroughput(t *testing.T) {
	if os.Getenv("MMSGATE_MEASURE") == "" {
		t.Skip("set MMSGATE_MEASURE=1 to measure")
	}
	for name, c := range dynamoBackends(t) {
		tbl := table(t, c)
		const workers, d = 10, 5 * time.Second
		var n, failed atomic.Int64
		var wg sync.WaitGroup
		ctx, cancel := context.WithTimeout(t.Context(), d)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					pk := "msg#" + strconv.Itoa(w) + "-" + strconv.Itoa(i)
					if err := claim(ctx, c, tbl, pk, false); err != nil {
						if ctx.Err() == nil {
							failed.Add(1)
						}
						continue
					}
					if claim(ctx, c, tbl, pk, false) == nil { // must fail its condition
						failed.Add(1)
					}
					n.Add(2)
				}
			}()
		}
		wg.Wait()
		cancel()
		fmt.Printf("| %s | %d workers | %.0f conditional puts/s | %d wrong |\n", name, workers, float64(n.Load())/d.Seconds(), failed.Load())
	}
}

// TestSQSThroughput measures send + receive + delete round trips per
// second with 10 workers, moto against fakesqs (MMSGATE_MEASURE=1).
func TestSQSThroughput(t *testing.T) {
	if os.Getenv("MMSGATE_MEASURE") == "" {
		t.Skip("set MMSGATE_MEASURE=1 to measure")
	}
	fake := fakesqs.New()
	furl, err := fake.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	for name, url := range map[string]string{"moto": server.URL, "fakesqs": furl} {
		c := sqs.NewFromConfig(cfg(), func(o *sqs.Options) { o.BaseEndpoint = aws.String(url) })
		out, err := c.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String(fmt.Sprintf("bench%d", time.Now().UnixNano()))})
		if err != nil {
			t.Fatal(err)
		}
		q := out.QueueUrl
		const workers, d = 10, 5 * time.Second
		var n atomic.Int64
		var wg sync.WaitGroup
		ctx, cancel := context.WithTimeout(t.Context(), d)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q, MessageBody: aws.String("x")}); err != nil {
						continue
					}
					r, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q, MaxNumberOfMessages: 1})
					if err != nil || len(r.Messages) == 0 {
						continue
					}
					if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: q, ReceiptHandle: r.Messages[0].ReceiptHandle}); err == nil {
						n.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		cancel()
		fmt.Printf("| %s | %d workers | %.0f send+receive+delete/s |\n", name, workers, float64(n.Load())/d.Seconds())
	}
}
