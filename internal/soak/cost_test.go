package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"gopkg.in/yaml.v3"

	"github.com/mmsgate/mmsgate/internal/faultproxy"
	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/memdb"
	"github.com/mmsgate/mmsgate/internal/sim"
	"github.com/mmsgate/mmsgate/internal/stack"
	"github.com/mmsgate/mmsgate/pkg/sdkhttp"
)

// awsConfig is a config for the real SDK clients whose User-Agent carries
// appID, as the functions' do (AWS_SDK_UA_APP_ID).
func awsConfig(appID string) aws.Config {
	return aws.Config{Region: "us-east-1", HTTPClient: sdkhttp.Wrap(nil), AppID: appID, RetryMaxAttempts: 3,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "k", SecretAccessKey: "s"}, nil
		})}
}

// fakeDynamo answers UpdateItem with ConsumedCapacity when asked for it,
// or with a failed condition when the body says "fail"; GetItem with an
// empty item.
func fakeDynamo(t *testing.T) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var in map[string]any
		if err := json.Unmarshal(body, &in); err != nil {
			t.Errorf("the proxy forwarded a body that is not JSON: %q", body)
		}
		status, out := 200, map[string]any{}
		switch {
		case strings.Contains(string(body), "fail"):
			status, out = 400, map[string]any{"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException", "message": "The conditional request failed"}
		case in["ReturnConsumedCapacity"] == "TOTAL":
			out["ConsumedCapacity"] = map[string]any{"TableName": "t", "CapacityUnits": 2.0}
		}
		b, _ := json.Marshal(out)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(b)), 10))
		w.WriteHeader(status)
		w.Write(b)
	}))
}

// TestDynamoDBCounts: the fault proxy counts calls by caller, operation
// (X-Amz-Target) and outcome, throttled ones apart, and adds up the
// capacity the target reports when asked to measure it.
func TestDynamoDBCounts(t *testing.T) {
	target := fakeDynamo(t)
	defer target.Close()
	p, base, err := faultproxy.Front(target.URL, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.MeasureCapacity()
	db := dynamodb.NewFromConfig(awsConfig("postback"), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(base) })
	ctx := t.Context()
	key := map[string]dtypes.AttributeValue{"pk": &dtypes.AttributeValueMemberS{Value: "msg#a"}}

	for range 2 {
		if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("t"), Key: key, UpdateExpression: aws.String("SET a = :a"),
			ExpressionAttributeValues: map[string]dtypes.AttributeValue{":a": &dtypes.AttributeValueMemberS{Value: "ok"}}}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("t"), Key: key, UpdateExpression: aws.String("SET a = :a"),
		ExpressionAttributeValues: map[string]dtypes.AttributeValue{":a": &dtypes.AttributeValueMemberS{Value: "fail"}}})
	var cf *dtypes.ConditionalCheckFailedException
	if !errors.As(err, &cf) {
		t.Fatalf("UpdateItem = %v, want a failed condition", err)
	}
	p.ThrottleNext(1) // the SDK retries: one throttled, one answered
	if _, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("t"), Key: key, ConsistentRead: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}

	want := map[faultproxy.Call]int64{
		{Caller: "postback", Op: "UpdateItem", Outcome: faultproxy.OK}:                2,
		{Caller: "postback", Op: "UpdateItem", Outcome: faultproxy.ConditionalFailed}: 1,
		{Caller: "postback", Op: "GetItem", Outcome: faultproxy.ThrottledOutcome}:     1,
		{Caller: "postback", Op: "GetItem", Outcome: faultproxy.OK}:                   1,
	}
	calls := p.Calls()
	if len(calls) != len(want) {
		t.Errorf("Calls() = %v, want %v", calls, want)
	}
	for k, n := range want {
		if calls[k] != n {
			t.Errorf("%+v: %d, want %d", k, calls[k], n)
		}
	}
	if p.Throttled() != 1 {
		t.Errorf("Throttled() = %d, want 1", p.Throttled())
	}
	capacity := p.Capacity()
	if u := capacity[faultproxy.Call{Caller: "postback", Op: "UpdateItem", Outcome: faultproxy.OK}]; u != 4 {
		t.Errorf("UpdateItem capacity = %v, want 4 (2 calls × 2 units)", u)
	}
	if u := capacity[faultproxy.Call{Caller: "postback", Op: "GetItem", Outcome: faultproxy.OK}]; u != 2 {
		t.Errorf("GetItem capacity = %v, want 2", u)
	}
}

// TestSecretsCounts: the fault proxy in front of Secrets Manager counts
// GetSecretValue by caller.
func TestSecretsCounts(t *testing.T) {
	// What answers does not matter here: the proxy counts.
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Write([]byte(`{"ARN":"arn:aws:secretsmanager:us-east-1:000000000000:secret:s","Name":"s","SecretString":"v","VersionId":"1"}`))
	}))
	defer target.Close()
	p, base, err := faultproxy.Front(target.URL, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, app := range []string{"send-mms", "send-mms", ""} {
		c := secretsmanager.NewFromConfig(awsConfig(app), func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(base) })
		if _, err := c.GetSecretValue(t.Context(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("s")}); err != nil {
			t.Fatal(err)
		}
	}
	if got := secretReads(p); len(got) != 2 || got["send-mms"] != 2 || got[""] != 1 {
		t.Errorf("secretReads = %v; want send-mms 2, harness 1", got)
	}
}

// TestUsage: the cost table is the difference of two snapshots, priced;
// the harness's calls and throttled calls are not billed, failed
// conditions are (one unit each).
func TestUsage(t *testing.T) {
	upd := faultproxy.Call{Caller: "send-mms", Op: "UpdateItem", Outcome: faultproxy.OK}
	before := snapshot{
		dynamo:   map[faultproxy.Call]int64{upd: 10},
		capacity: map[faultproxy.Call]float64{upd: 10},
		stack:    stack.Usage{Functions: map[string]stack.FunctionUsage{}},
	}
	after := snapshot{
		dynamo: map[faultproxy.Call]int64{upd: 410,
			{Caller: "send-mms", Op: "UpdateItem", Outcome: faultproxy.ConditionalFailed}: 20,
			{Caller: "send-mms", Op: "GetItem", Outcome: faultproxy.ThrottledOutcome}:     7,
			{Caller: "send-mms", Op: "GetItem", Outcome: faultproxy.OK}:                   100,
			{Caller: "", Op: "GetItem", Outcome: faultproxy.OK}:                           1000},
		capacity: map[faultproxy.Call]float64{upd: 410, {Caller: "send-mms", Op: "GetItem", Outcome: faultproxy.OK}: 100},
		sqs: map[faultproxy.SQSCall]faultproxy.SQSUsage{
			{Caller: "send-mms", Op: "SendMessage", Queue: "events"}: {Requests: 100, Messages: 100, Billed: 100},
			{Caller: "", Op: "ReceiveMessage", Queue: "events"}:      {Requests: 50, Messages: 100, Billed: 50}},
		secrets: map[string]int64{"send-mms": 2},
		stack: stack.Usage{APIRequests: 200,
			Functions: map[string]stack.FunctionUsage{stack.SenderFunction: {Invocations: 10, Reports: 10, Billed: 2 * time.Second, MemoryMB: 256}},
			ESM:       map[string]stack.ESMUsage{"mmsgate-send": {Receives: 10, EmptyReceives: 3, Received: 100, DeleteBatches: 10, Deleted: 100}}},
	}
	u := usage(before, after, DefaultPrices)
	rows := map[string]Cost{}
	for _, c := range u.Costs {
		rows[c.Service+" "+c.Op+" "+c.By] = c
	}
	check := func(row string, requests int64, units float64) {
		t.Helper()
		c, ok := rows[row]
		if !ok {
			t.Errorf("no row %q in %+v", row, u.Costs)
			return
		}
		if c.Requests != requests || c.Units != units {
			t.Errorf("%s: %d requests, %v units; want %d, %v", row, c.Requests, c.Units, requests, units)
		}
	}
	check("DynamoDB UpdateItem send-mms", 420, 420)
	check("DynamoDB GetItem send-mms", 100, 100)
	check("SQS SendMessage events send-mms", 100, 100)
	check("SQS ReceiveMessage mmsgate-send Lambda ESM", 10, 10)
	check("SQS DeleteMessageBatch mmsgate-send Lambda ESM", 10, 10)
	check("Lambda invocations SendMmsFunction", 10, 10)
	check("Lambda duration SendMmsFunction", 10, 0.5) // 2 s at 0.25 GB
	check("API Gateway HTTP API requests Skycore postbacks", 200, 200)
	check("Secrets Manager GetSecretValue send-mms", 2, 2)
	if len(rows) != 9 {
		t.Errorf("%d rows, want 9 (no harness rows): %+v", len(rows), u.Costs)
	}
	if u.Throttled != 7 || u.EmptyReceives != 3 {
		t.Errorf("throttled %d, empty receives %d; want 7, 3", u.Throttled, u.EmptyReceives)
	}
	// 420 WRU + 100 RRU + 120 SQS requests + 10 invocations + 0.5 GB-s + 200 API + 2 secret calls.
	want := 420*0.625/1e6 + 100*0.125/1e6 + 120*0.40/1e6 + 10*0.20/1e6 + 0.5*0.0000133334 + 200*1.00/1e6 + 2*0.05/1e4
	if d := u.Dollars(); d < want*0.999 || d > want*1.001 {
		t.Errorf("Dollars() = %v, want %v", d, want)
	}
	var b strings.Builder
	u.printCosts(&b, 100, 120)
	if !strings.Contains(b.String(), "UpdateItem") || !strings.Contains(b.String(), "4.200") {
		t.Errorf("cost table lacks UpdateItem at 4.2 per accepted id:\n%s", b.String())
	}
}

// TestItemSize follows DynamoDB's sizing rules.
func TestItemSize(t *testing.T) {
	item := map[string]dtypes.AttributeValue{
		"pk":   &dtypes.AttributeValueMemberS{Value: "msg#a"},                                                             // 2 + 5
		"n":    &dtypes.AttributeValueMemberN{Value: "1774555000"},                                                        // 1 + 1 + 4 (7 significant digits: trailing zeros are trimmed)
		"ok":   &dtypes.AttributeValueMemberBOOL{Value: true},                                                             // 2 + 1
		"list": &dtypes.AttributeValueMemberL{Value: []dtypes.AttributeValue{&dtypes.AttributeValueMemberS{Value: "ab"}}}, // 4 + 3 + 1 + 2
	}
	if n := memdb.ItemSize(item); n != 7+6+3+10 {
		t.Errorf("ItemSize = %d, want 26", n)
	}
}

// TestMemoryMatchesTemplate: the emulators run each function with its
// MemorySize in template.yaml, which GB-seconds are billed at.
func TestMemoryMatchesTemplate(t *testing.T) {
	root, err := stack.Root()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	type memory struct {
		MemorySize int `yaml:"MemorySize"`
	}
	var tpl struct {
		Globals struct {
			Function memory `yaml:"Function"`
		} `yaml:"Globals"`
		Resources map[string]struct {
			Properties memory `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		t.Fatal(err)
	}
	untag(&n)
	if err := n.Decode(&tpl); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{stack.SenderFunction: stack.SenderMemoryMB, stack.PostbackFunction: stack.PostbackMemoryMB} {
		got := tpl.Resources[name].Properties.MemorySize
		if got == 0 {
			got = tpl.Globals.Function.MemorySize
		}
		if got != want {
			t.Errorf("%s: MemorySize %d in template.yaml, the stack runs it with %d MB", name, got, want)
		}
	}
}

// untag drops CloudFormation's intrinsic tags (!Ref x → "x").
func untag(n *yaml.Node) {
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		n.Tag = ""
	}
	for _, c := range n.Content {
		untag(c)
	}
}

// TestCostCleanPath measures the cost of a message when nothing fails:
// 200 valid requests through the real bootstraps against a Skycore that
// accepts every send and delivers it (a sent and a delivered postback).
// The counters must agree with what the run published, and the table is
// BENCHMARKS.md's steady-state column.
func TestCostCleanPath(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binaries")
	}
	root, err := stack.Root()
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	bins, err := stack.Build(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	// RECEIPT_WINDOW on and short: every check is scheduled and run (it
	// finds the delivered receipt, so no unconfirmed event).
	s, err := stack.Start(ctx, bins, stack.Options{Sim: sim.Default(), Timeout: 10 * time.Second, BatchSize: 10, ReceiptWindow: "3s"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Env.Proxy.MeasureCapacity()
	const n = 200
	before := takeSnapshot(s)
	for i := range n {
		if err := s.Enqueue(fmt.Sprintf(`{"id":"clean-%04d","to":"1774555%04d","mmsId":%d}`, i, i, 1000+i%9)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Pump(ctx, nil); err != nil {
		t.Fatal(err)
	}
	u := usage(before, takeSnapshot(s), DefaultPrices)
	if err := u.measureItems(ctx, s.Env.DynamoDBDirect(), localenv.Table); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	u.printCosts(&b, n, n)
	t.Log("\n" + b.String())

	events := s.Events()
	published := int64(0)
	rows := map[string]Cost{}
	for _, c := range u.Costs {
		rows[c.Service+" "+c.Op+" "+c.By] = c
		if c.Service == "SQS" && strings.HasSuffix(c.Op, " "+localenv.EventQueue) && strings.HasPrefix(c.Op, "SendMessage") {
			published += c.Messages
		}
	}
	if published != int64(len(events)) || len(events) != 3*n {
		t.Errorf("%d events sent to the events queue, %d drained; want %d (accepted, sent, delivered per id)", published, len(events), 3*n)
	}
	// The sender's sends of a batch go out together (pkg/outbox): its
	// accepted events and its receipt checks, one SendMessageBatch per
	// batch of 10 rather than a SendMessage each.
	for _, q := range []string{localenv.EventQueue, localenv.ReceiptQueue} {
		single, batch := rows["SQS SendMessage "+q+" send-mms"], rows["SQS SendMessageBatch "+q+" send-mms"]
		if single.Messages+batch.Messages != n || single.Requests+batch.Requests > n/5 {
			t.Errorf("sender to %s: %d messages in %d SendMessage + %d SendMessageBatch calls; want %d messages in at most %d calls",
				q, single.Messages+batch.Messages, single.Requests, batch.Requests, n, n/5)
		}
	}
	if c := rows["Lambda invocations SendMmsFunction"]; c.Requests < n/10 || c.Requests > n/2 {
		t.Errorf("%d sender invocations for %d requests in batches of 10", c.Requests, n)
	}
	if c := rows["API Gateway HTTP API requests Skycore postbacks"]; c.Requests != int64(len(s.Sim.Postbacks())) {
		t.Errorf("%d API Gateway requests, the simulator made %d postback attempts", c.Requests, len(s.Sim.Postbacks()))
	}
	// The sender's happy path: claim, accept, link, event-sent.
	if w := rows["DynamoDB UpdateItem send-mms"].Requests; w < 4*n || w > 5*n {
		t.Errorf("%d sender UpdateItem calls, want 4 per id", w)
	}
	if u.ItemsOver1KB != 0 {
		t.Errorf("%d items over 1 KB on the clean path (largest msg# %d B)", u.ItemsOver1KB, u.MaxMsgItem)
	}
}
