// Package mmsgate holds the tests of the deployment files at the top of
// the repository: template.yaml (with goformation plus a raw YAML read,
// since goformation drops some SQS event fields and lacks LoggingConfig),
// env.json and the Makefile's SAM build targets.
package mmsgate

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/intrinsics"
	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/mmsgate/mmsgate/pkg/metric"
	"github.com/mmsgate/mmsgate/pkg/postback"
	"github.com/mmsgate/mmsgate/pkg/receipt"
	"github.com/mmsgate/mmsgate/pkg/schedule"
	"github.com/mmsgate/mmsgate/pkg/sender"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// raw is template.yaml as plain YAML, intrinsics kept as tagged nodes.
func raw(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile("template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		t.Fatal(err)
	}
	stripTags(&n) // !Ref x → "x", so that the tree decodes as plain maps
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func stripTags(n *yaml.Node) {
	if strings.HasPrefix(n.Tag, "!") && n.Tag != "!!str" && !strings.HasPrefix(n.Tag, "!!") {
		n.Tag = ""
	}
	for _, c := range n.Content {
		stripTags(c)
	}
}

func path(t *testing.T, m any, keys ...string) any {
	t.Helper()
	cur := m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("%s: not a map at %q", strings.Join(keys, "."), k)
		}
		if cur, ok = mm[k]; !ok {
			t.Fatalf("%s: missing %q", strings.Join(keys, "."), k)
		}
	}
	return cur
}

func TestTemplateParses(t *testing.T) {
	// goformation rejects unknown properties; LoggingConfig is valid SAM it
	// does not know (in Globals and in each function), so it is checked
	// from the raw YAML instead.
	b, _ := os.ReadFile("template.yaml")
	for _, indent := range []string{"    ", "      "} {
		b = regexp.MustCompile(`(?m)^`+indent+`LoggingConfig:\n(`+indent+`  .*\n)+`).ReplaceAll(b, nil)
	}
	tmp := t.TempDir() + "/template.yaml"
	os.WriteFile(tmp, b, 0o644)
	// Ref: a parameter gives its default, a resource its logical id.
	ref := func(_ string, input any, tpl any) any {
		name, _ := input.(string)
		if name == "AWS::NoValue" {
			return nil
		}
		if tm, ok := tpl.(map[string]any); ok {
			if params, ok := tm["Parameters"].(map[string]any); ok {
				if p, ok := params[name].(map[string]any); ok {
					return p["Default"]
				}
			}
		}
		return name
	}
	tpl, err := goformation.OpenWithOptions(tmp, &intrinsics.ProcessorOptions{
		IntrinsicHandlerOverrides: map[string]intrinsics.IntrinsicHandler{"Ref": ref},
	})
	if err != nil {
		t.Fatalf("goformation: %v", err)
	}
	fns := tpl.GetAllServerlessFunctionResources()
	for _, name := range functionNames {
		fn, ok := fns[name]
		if !ok {
			t.Errorf("function %s missing", name)
			continue
		}
		if fn.CodeUri == nil || fn.CodeUri.String == nil || *fn.CodeUri.String != "." {
			t.Errorf("%s CodeUri = %+v, want the root (the Makefile builds it)", name, fn.CodeUri)
		}
		if fn.Environment == nil || len(fn.Environment.Variables) == 0 {
			t.Errorf("%s has no environment", name)
		}
	}
	if _, err := tpl.GetSQSQueueWithName("SendQueue"); err != nil {
		t.Error(err)
	}
	if _, err := tpl.GetDynamoDBTableWithName("MessagesTable"); err != nil {
		t.Error(err)
	}
	if _, err := tpl.GetApiGatewayV2ApiWithName("PostbackApi"); err != nil {
		t.Error(err)
	}
	if _, err := tpl.GetApiGatewayV2StageWithName("PostbackStage"); err != nil {
		t.Error(err)
	}
}

func TestGlobals(t *testing.T) {
	g := path(t, raw(t), "Globals", "Function").(map[string]any)
	want := map[string]any{"Runtime": "provided.al2023", "Handler": "bootstrap", "Tracing": "Active"}
	for k, v := range want {
		if g[k] != v {
			t.Errorf("Globals.Function.%s = %v, want %v", k, g[k], v)
		}
	}
	if a := g["Architectures"].([]any); len(a) != 1 || a[0] != "arm64" {
		t.Errorf("Architectures = %v", a)
	}
	if m := g["MemorySize"].(int); m < 128 || m > 256 {
		t.Errorf("MemorySize = %d", m)
	}
	lc := g["LoggingConfig"].(map[string]any)
	if lc["LogFormat"] != "JSON" || lc["ApplicationLogLevel"] == nil || lc["SystemLogLevel"] == nil {
		t.Errorf("LoggingConfig = %v", lc)
	}
}

// lambdaLevels ranks Lambda's log levels; a line passes the filter when its
// level ranks at or above the configured one.
var lambdaLevels = map[string]int{"TRACE": 0, "DEBUG": 1, "INFO": 2, "WARN": 3, "ERROR": 4, "FATAL": 5}

// TestTemplateLogLevelKeepsMetrics: Lambda's application log filter reads
// each line's "level" and counts a line without one as INFO. EMF metric
// lines have none, so with the filter at WARN or ERROR every metric would
// be dropped. Whatever LogLevel is deployed, metrics and the app's own lines
// at that level must pass, and START/REPORT (system INFO) must be kept.
func TestTemplateLogLevelKeepsMetrics(t *testing.T) {
	m := raw(t)
	lc := path(t, m, "Globals", "Function", "LoggingConfig").(map[string]any)
	app, _ := lc["ApplicationLogLevel"].(string)
	appRank, ok := lambdaLevels[app]
	if !ok {
		t.Fatalf("ApplicationLogLevel = %v, want a fixed level (not the LogLevel parameter)", lc["ApplicationLogLevel"])
	}
	emfRank := lambdaLevels["INFO"] // no "level" field
	for _, l := range path(t, m, "Parameters", "LogLevel", "AllowedValues").([]any) {
		if emfRank < appRank {
			t.Errorf("LogLevel=%v: Lambda drops EMF lines (INFO) below ApplicationLogLevel %s", l, app)
		}
		if lambdaLevels[l.(string)] < appRank {
			t.Errorf("LogLevel=%v: Lambda drops the app's %v lines below ApplicationLogLevel %s", l, l, app)
		}
	}
	if sys, _ := lc["SystemLogLevel"].(string); lambdaLevels[sys] > lambdaLevels["INFO"] {
		t.Errorf("SystemLogLevel = %v drops START/REPORT lines (INFO): no duration or memory", lc["SystemLogLevel"])
	}
	// The app filters by LOG_LEVEL, which pkg/applog prefers over
	// AWS_LAMBDA_LOG_LEVEL (the ApplicationLogLevel above).
	for _, fn := range functionNames {
		if v := path(t, function(t, m, fn), "Environment", "Variables", "LOG_LEVEL"); v != "LogLevel" {
			t.Errorf("%s LOG_LEVEL = %v, want !Ref LogLevel", fn, v)
		}
		if own, _ := function(t, m, fn)["LoggingConfig"].(map[string]any); own["ApplicationLogLevel"] != nil {
			t.Errorf("%s overrides ApplicationLogLevel", fn)
		}
	}
}

// functionNames are the template's Lambda functions.
var functionNames = []string{"SendMmsFunction", "PostbackFunction", "ReceiptCheckFunction"}

func function(t *testing.T, m map[string]any, name string) map[string]any {
	return path(t, m, "Resources", name, "Properties").(map[string]any)
}

func TestFunctions(t *testing.T) {
	m := raw(t)
	for name, reads := range map[string][]string{"SendMmsFunction": sender.EnvVars, "PostbackFunction": postback.EnvVars,
		"ReceiptCheckFunction": receipt.EnvVars} {
		t.Run(name, func(t *testing.T) {
			p := function(t, m, name)
			if meta := path(t, m, "Resources", name, "Metadata", "BuildMethod"); meta != "makefile" {
				t.Errorf("BuildMethod = %v", meta)
			}
			if st, err := os.Stat(p["CodeUri"].(string)); err != nil || !st.IsDir() {
				t.Errorf("CodeUri %v: %v", p["CodeUri"], err)
			}
			vars := path(t, p, "Environment", "Variables").(map[string]any)
			for _, v := range reads {
				if _, ok := vars[v]; !ok {
					t.Errorf("%s reads %s, which the template does not declare (SAM drops undeclared variables)", name, v)
				}
			}
			for v := range vars {
				if !slices.Contains(reads, v) {
					t.Errorf("%s declares %s, which the code never reads", name, v)
				}
			}
		})
	}
}

func TestSendQueueAndEvent(t *testing.T) {
	m := raw(t)
	timeout := path(t, m, "Globals", "Function", "Timeout").(int)
	if ft, ok := function(t, m, "SendMmsFunction")["Timeout"].(int); ok {
		timeout = ft
	}
	q := path(t, m, "Resources", "SendQueue", "Properties").(map[string]any)
	if vt := q["VisibilityTimeout"].(int); vt < 6*timeout {
		t.Errorf("SendQueue VisibilityTimeout %d < 6 × function timeout %d", vt, timeout)
	}
	rp := q["RedrivePolicy"].(map[string]any)
	if !strings.Contains(rp["deadLetterTargetArn"].(string), "SendDeadLetterQueue") {
		t.Errorf("RedrivePolicy = %v", rp)
	}
	if r := path(t, m, "Resources", "SendDeadLetterQueue", "Properties", "MessageRetentionPeriod"); r != 1209600 {
		t.Errorf("DLQ retention = %v, want 14 days", r)
	}
	ev := path(t, function(t, m, "SendMmsFunction"), "Events", "SendQueue").(map[string]any)
	props := ev["Properties"].(map[string]any)
	if ev["Type"] != "SQS" || props["BatchSize"] == nil || props["MaximumBatchingWindowInSeconds"] == nil {
		t.Errorf("SQS event = %v", ev)
	}
	if frt := props["FunctionResponseTypes"].([]any); len(frt) != 1 || frt[0] != "ReportBatchItemFailures" {
		t.Errorf("FunctionResponseTypes = %v (without it a partial failure deletes the whole batch)", frt)
	}
	if mc := path(t, props, "ScalingConfig", "MaximumConcurrency"); mc == nil {
		t.Error("ScalingConfig.MaximumConcurrency missing")
	}
	// Parameters, so that each deployment sets them.
	for _, k := range []string{"BatchSize", "MaximumBatchingWindowInSeconds"} {
		if _, ok := path(t, m, "Parameters").(map[string]any)[props[k].(string)]; !ok {
			t.Errorf("%s is not a parameter: %v", k, props[k])
		}
	}
	// Lambda refuses a batch size over 10 with a zero batching window: a
	// deploy with such a pair would fail half-way.
	bs := path(t, m, "Parameters", props["BatchSize"].(string)).(map[string]any)
	win := path(t, m, "Parameters", props["MaximumBatchingWindowInSeconds"].(string)).(map[string]any)
	if mx, _ := bs["MaxValue"].(int); (mx == 0 || mx > 10) && win["MinValue"] != 1 {
		t.Errorf("SendBatchSize MaxValue %v with a batching window MinValue %v: >10 with a 0 s window fails the deploy", bs["MaxValue"], win["MinValue"])
	}
}

func TestTable(t *testing.T) {
	p := path(t, raw(t), "Resources", "MessagesTable", "Properties").(map[string]any)
	if p["BillingMode"] != "PAY_PER_REQUEST" {
		t.Errorf("BillingMode = %v", p["BillingMode"])
	}
	ttl := p["TimeToLiveSpecification"].(map[string]any)
	if ttl["AttributeName"] != "exp" || ttl["Enabled"] != true {
		t.Errorf("TTL = %v (pkg/store writes exp)", ttl)
	}
	if path(t, p, "PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled") != true {
		t.Error("point-in-time recovery off")
	}
	ks := p["KeySchema"].([]any)[0].(map[string]any)
	if ks["AttributeName"] != "pk" || ks["KeyType"] != "HASH" {
		t.Errorf("KeySchema = %v (pkg/store uses pk)", ks)
	}
}

func TestAlarmsAndOutputs(t *testing.T) {
	m := raw(t)
	res := path(t, m, "Resources").(map[string]any)
	metrics := map[string]bool{}
	for _, r := range res {
		rm := r.(map[string]any)
		if rm["Type"] == "AWS::CloudWatch::Alarm" {
			mn, _ := rm["Properties"].(map[string]any)["MetricName"].(string) // "" for a metric-math alarm
			metrics[mn] = true
		}
	}
	for _, mn := range []string{"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "Errors", "Throttles"} {
		if !metrics[mn] {
			t.Errorf("no alarm on %s", mn)
		}
	}
	out := path(t, m, "Outputs").(map[string]any)
	for _, k := range []string{"SendQueueUrl", "DeliveryEventsQueueUrl", "PostbackUrl", "MessagesTableName"} {
		if _, ok := out[k]; !ok {
			t.Errorf("output %s missing", k)
		}
	}
	if u := path(t, out, "PostbackUrl", "Value").(string); !strings.HasSuffix(u, "/skycore/postbacks/") {
		t.Errorf("PostbackUrl = %q, want it without the token", u)
	}
}

// TestEnvJSON: sam local --env-vars silently ignores variables the
// template does not declare for the function.
func TestEnvJSON(t *testing.T) {
	b, err := os.ReadFile("env.json")
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]map[string]string
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	m := raw(t)
	global := path(t, m, "Globals", "Function", "Environment", "Variables").(map[string]any)
	declared := func(fn, v string) bool {
		_, inFn := path(t, function(t, m, fn), "Environment", "Variables").(map[string]any)[v]
		_, inGlobal := global[v]
		return inFn || inGlobal
	}
	for section, vars := range env {
		fns := []string{section}
		if section == "Parameters" {
			fns = functionNames
		}
		for v := range vars {
			ok := false
			for _, fn := range fns {
				ok = ok || declared(fn, v)
			}
			if !ok {
				t.Errorf("env.json %s.%s is declared by no function in template.yaml", section, v)
			}
		}
	}
}

func TestMakefileBuildTargets(t *testing.T) {
	b, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	mk := string(b)
	for _, def := range []string{"LAMBDA_ENV   := CGO_ENABLED=0 GOOS=linux GOARCH=arm64", `LAMBDA_FLAGS := -tags lambda.norpc -trimpath -ldflags "-s -w`} {
		if !strings.Contains(mk, def) {
			t.Errorf("Makefile lacks %q", def)
		}
	}
	for fn, dir := range map[string]string{"SendMmsFunction": "send-mms", "PostbackFunction": "postback", "ReceiptCheckFunction": "receipt-check"} {
		re := regexp.MustCompile(`(?m)^build-` + fn + `:\n\t\$\(LAMBDA_ENV\) \$\(GO\) build \$\(LAMBDA_FLAGS\) -o \$\(ARTIFACTS_DIR\)/bootstrap \./functions/` + dir + `$`)
		if !re.MatchString(mk) {
			t.Errorf("Makefile lacks build-%s building ./functions/%s into $(ARTIFACTS_DIR)/bootstrap", fn, dir)
		}
		if _, err := os.Stat("functions/" + dir + "/main.go"); err != nil {
			t.Error(err)
		}
	}
}

// TestEveryEventIsRead: each sample event under events/ feeds some test
// (and `sam local invoke -e`), so none can rot.
func TestEveryEventIsRead(t *testing.T) {
	files, err := filepath.Glob("events/*/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no events: %v", err)
	}
	var tests strings.Builder
	filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, "_test.go") {
			b, _ := os.ReadFile(p)
			tests.Write(b)
		}
		return nil
	})
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		if !strings.Contains(tests.String(), `"`+name+`"`) {
			t.Errorf("%s is read by no test", f)
		}
	}
}

// stmt is one IAM statement of a function's policies, with SAM policy
// templates expanded and references flattened to names (stripTags turns
// !Ref X into "X" and !GetAtt X.Arn into "X.Arn").
type stmt struct {
	Actions   []string
	Resources []string
	Condition map[string]any
}

// samTemplates are the policy templates this template may use, with the
// actions SAM expands them to (samtranslator policy_templates.json).
var samTemplates = map[string][]string{
	"SQSPollerPolicy": {"sqs:ChangeMessageVisibility", "sqs:ChangeMessageVisibilityBatch", "sqs:DeleteMessage",
		"sqs:DeleteMessageBatch", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"},
	"SQSSendMessagePolicy":                  {"sqs:SendMessage*"},
	"AWSSecretsManagerGetSecretValuePolicy": {"secretsmanager:GetSecretValue"},
	"DynamoDBCrudPolicy": {"dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Scan", "dynamodb:Query",
		"dynamodb:UpdateItem", "dynamodb:BatchWriteItem", "dynamodb:BatchGetItem", "dynamodb:DescribeTable", "dynamodb:ConditionCheckItem"},
}

// strs flattens a YAML value (string, list, !If [cond, a, b], !Sub [s, map])
// into its strings.
func strs(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, strs(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, e := range v {
			out = append(out, strs(e)...)
		}
		return out
	}
	return nil
}

// statements lists every statement a function's Policies grant. SAM adds
// AWSLambdaBasicExecutionRole, AWSXrayWriteOnlyAccess and, for the SQS
// event, AWSLambdaSQSQueueExecutionRole: none touches DynamoDB or secrets.
func statements(t *testing.T, m map[string]any, fn string) []stmt {
	t.Helper()
	var out []stmt
	var add func(p any)
	add = func(p any) {
		switch p := p.(type) {
		case []any: // !If [condition, policy, policy or AWS::NoValue]
			if len(p) != 3 {
				t.Fatalf("%s: policy %v", fn, p)
			}
			add(p[1])
			add(p[2])
		case string:
			if p != "AWS::NoValue" {
				t.Errorf("%s: managed policy %q (not scoped to this stack)", fn, p)
			}
		case map[string]any:
			for k, v := range p {
				if k == "Statement" {
					for _, s := range v.([]any) {
						sm := s.(map[string]any)
						if sm["Effect"] != "Allow" {
							continue
						}
						cond, _ := sm["Condition"].(map[string]any)
						out = append(out, stmt{Actions: strs(sm["Action"]), Resources: strs(sm["Resource"]), Condition: cond})
					}
					continue
				}
				actions, ok := samTemplates[k]
				if !ok {
					t.Errorf("%s: unknown policy template %s", fn, k)
					continue
				}
				out = append(out, stmt{Actions: actions, Resources: strs(v)})
			}
		}
	}
	for _, p := range function(t, m, fn)["Policies"].([]any) {
		add(p)
	}
	return out
}

// allows reports whether an IAM action pattern (with * and ?) covers action.
func allows(pattern, action string) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(strings.ToLower(pattern))) + "$"
	return regexp.MustCompile(re).MatchString(strings.ToLower(action))
}

func (s stmt) grants(action string) bool {
	return slices.ContainsFunc(s.Actions, func(a string) bool { return allows(a, action) })
}

// storeCalls lists the DynamoDB operations pkg/store calls on the table
// (st.db.X), and the key prefixes it writes ("msg#" + id).
func storeCalls(t *testing.T) (ops, prefixes []string) {
	t.Helper()
	files, _ := filepath.Glob("pkg/store/*.go")
	call := regexp.MustCompile(`\bst\.db\.([A-Z]\w*)\(`)
	prefix := regexp.MustCompile(`"([a-z]+#)"\s*\+`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, mm := range call.FindAllStringSubmatch(string(b), -1) {
			if !slices.Contains(ops, mm[1]) {
				ops = append(ops, mm[1])
			}
		}
		for _, mm := range prefix.FindAllStringSubmatch(string(b), -1) {
			if !slices.Contains(prefixes, mm[1]) {
				prefixes = append(prefixes, mm[1])
			}
		}
	}
	if len(ops) == 0 || len(prefixes) == 0 {
		t.Fatalf("found no DynamoDB calls (%v) or key prefixes (%v) in pkg/store", ops, prefixes)
	}
	return ops, prefixes
}

// TestTemplateDynamoDBLeastPrivilege: each function may call on the table
// exactly what pkg/store calls (GetItem, UpdateItem), never a wildcard, a
// Scan, a Delete or a Batch, and only on items whose key starts with a
// prefix the code uses (dynamodb:LeadingKeys, all values).
func TestTemplateDynamoDBLeastPrivilege(t *testing.T) {
	m := raw(t)
	ops, prefixes := storeCalls(t)
	forbidden := []string{"dynamodb:Scan", "dynamodb:Query", "dynamodb:DeleteItem", "dynamodb:DeleteTable",
		"dynamodb:BatchWriteItem", "dynamodb:BatchGetItem", "dynamodb:PartiQLDelete", "dynamodb:UpdateTable",
		"dynamodb:PutItem", "dynamodb:TransactWriteItems"}
	wantKeys := map[string][]string{
		"SendMmsFunction":  {"msg#*", "trk#*", "sup#*", store.ThrottleKey}, // sup#: the suppression list; the shared throughput's item
		"PostbackFunction": {"trk#*", "msg#*", "sup#*", "in#*"},            // msg#: in-doubt reconciliation by CLIENT_REFERENCE; sup#: opt-out and opt-in keywords; in#: inbound messages
		// trk#: the unconfirmed marker and emitter slot; msg#: the request's
		// fields, and the marker when it has no tracking id.
		"ReceiptCheckFunction": {"trk#*", "msg#*"},
	}
	for fn, keys := range wantKeys {
		t.Run(fn, func(t *testing.T) {
			var granted []string
			for _, s := range statements(t, m, fn) {
				if !slices.ContainsFunc(s.Actions, func(a string) bool { return strings.HasPrefix(a, "dynamodb:") || a == "*" }) {
					continue
				}
				for _, a := range s.Actions {
					if strings.Contains(a, "*") {
						t.Errorf("wildcard action %s", a)
					}
					granted = append(granted, strings.TrimPrefix(a, "dynamodb:"))
				}
				for _, f := range forbidden {
					if s.grants(f) && !slices.Contains(ops, strings.TrimPrefix(f, "dynamodb:")) {
						t.Errorf("grants %s, which pkg/store never calls", f)
					}
				}
				if len(s.Resources) != 1 || s.Resources[0] != "MessagesTable.Arn" {
					t.Errorf("DynamoDB resources %v, want only the table (no index, no other table)", s.Resources)
				}
				all, _ := s.Condition["ForAllValues:StringLike"].(map[string]any)
				lk, ok := all["dynamodb:LeadingKeys"]
				if !ok {
					t.Errorf("no ForAllValues:StringLike dynamodb:LeadingKeys condition: %v", s.Condition)
					continue
				}
				if got := strs(lk); !slices.Equal(got, keys) {
					t.Errorf("LeadingKeys = %v, want %v", got, keys)
				}
			}
			slices.Sort(granted)
			want := slices.Clone(ops)
			slices.Sort(want)
			if !slices.Equal(granted, want) {
				t.Errorf("DynamoDB actions = %v, want exactly what pkg/store calls: %v", granted, want)
			}
		})
	}
	// Every key prefix the code writes is allowed to some function.
	for _, p := range prefixes {
		if !slices.ContainsFunc([]string{"SendMmsFunction", "PostbackFunction"}, func(fn string) bool { return slices.Contains(wantKeys[fn], p+"*") }) {
			t.Errorf("pkg/store writes %s… items, which no LeadingKeys condition allows", p)
		}
	}
}

// TestTemplateSecretSplit: the internet-facing postback function reads the
// token's secret and cannot read the API key's (docs/secrets.md).
func TestTemplateSecretSplit(t *testing.T) {
	m := raw(t)
	apiKey := []string{"SkycoreSecret", "ExistingApiKeySecretArn"}
	token := []string{"PostbackSecret", "ExistingPostbackSecretArn"}
	readable := func(fn string) []string {
		var out []string
		for _, s := range statements(t, m, fn) {
			if s.grants("secretsmanager:GetSecretValue") {
				out = append(out, s.Resources...)
			}
		}
		return out
	}
	for fn, tc := range map[string]struct{ may, mayNot []string }{
		"SendMmsFunction":  {apiKey, token},
		"PostbackFunction": {token, apiKey},
	} {
		got := readable(fn)
		for _, r := range got {
			if strings.Contains(r, "*") || slices.ContainsFunc(tc.mayNot, func(n string) bool { return strings.Contains(r, n) }) {
				t.Errorf("%s can read secret %q (resources %v)", fn, r, got)
			}
		}
		for _, r := range tc.may {
			if !slices.Contains(got, r) {
				t.Errorf("%s cannot read %s (resources %v)", fn, r, got)
			}
		}
	}
	env := func(fn string) map[string]any {
		return path(t, function(t, m, fn), "Environment", "Variables").(map[string]any)
	}
	if got := strs(env("SendMmsFunction")["SKYCORE_SECRET_ID"]); !slices.Contains(got, "SkycoreSecret") || !slices.Contains(got, "ExistingApiKeySecretArn") {
		t.Errorf("sender SKYCORE_SECRET_ID = %v", got)
	}
	if got := strs(env("PostbackFunction")["POSTBACK_SECRET_ID"]); !slices.Contains(got, "PostbackSecret") || !slices.Contains(got, "ExistingPostbackSecretArn") {
		t.Errorf("postback POSTBACK_SECRET_ID = %v", got)
	}
	if _, ok := env("PostbackFunction")["SKYCORE_SECRET_ID"]; ok {
		t.Error("the postback function is given SKYCORE_SECRET_ID")
	}
	// The created token secret holds the token only.
	gs := path(t, m, "Resources", "PostbackSecret", "Properties", "GenerateSecretString").(map[string]any)
	var tmpl map[string]any
	if err := json.Unmarshal([]byte(gs["SecretStringTemplate"].(string)), &tmpl); err != nil || len(tmpl) != 0 || gs["GenerateStringKey"] != "postback_token" || gs["ExcludePunctuation"] != true {
		t.Errorf("PostbackSecret GenerateSecretString = %v (%v)", gs, err)
	}
}

// TestTemplateApiKeySecretUnchanged: editing the API key secret's
// GenerateSecretString makes CloudFormation generate a new value on the
// next update, overwriting the API key operators put into it.
func TestTemplateApiKeySecretUnchanged(t *testing.T) {
	p := path(t, raw(t), "Resources", "SkycoreSecret", "Properties").(map[string]any)
	want := map[string]any{
		"SecretStringTemplate": `{"api_key": "PUT-THE-SKYCORE-API-KEY-HERE"}`,
		"GenerateStringKey":    "postback_token", "PasswordLength": 40, "ExcludePunctuation": true,
	}
	if diff := cmp.Diff(want, p["GenerateSecretString"]); diff != "" || p["Name"] != "mmsgate/${Env}/skycore" {
		t.Errorf("SkycoreSecret changed (-want +got):\n%s\nName = %v", diff, p["Name"])
	}
}

// TestTemplateSecretArnParameters: an existing secret is given by its full
// ARN: a name or a partial ARN would not match the IAM resource.
func TestTemplateSecretArnParameters(t *testing.T) {
	m := raw(t)
	for _, name := range []string{"ExistingApiKeySecretArn", "ExistingPostbackSecretArn"} {
		re := regexp.MustCompile(path(t, m, "Parameters", name, "AllowedPattern").(string))
		for in, ok := range map[string]bool{
			"": true, // the stack creates the secret
			"arn:aws:secretsmanager:us-east-1:123456789012:secret:mmsgate/prod/skycore-AbC123":     true,
			"arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:mmsgate/token-x9Y8z7": true,
			"arn:aws:secretsmanager:us-east-1:123456789012:secret:mmsgate/prod/skycore":            false, // no random suffix
			"mmsgate/prod/skycore": false, // a name
			"arn:aws:secretsmanager:us-east-1:123456789012:secret:*":                        false,
			"arn:aws:secretsmanager:us-east-1:123456789012:secret:mmsgate/prod/skycore-*":   false,
			"arn:aws:ssm:us-east-1:123456789012:parameter/mmsgate-AbC123":                   false,
			" arn:aws:secretsmanager:us-east-1:123456789012:secret:mmsgate/x-AbC123":        false,
			"arn:aws:secretsmanager:us-east-1:12345678901:secret:mmsgate/prod/skycore-AbC1": false,
		} {
			if got := re.MatchString(in); got != ok {
				t.Errorf("%s accepts %q = %v, want %v", name, in, got, ok)
			}
		}
	}
}

// TestTemplateLogRetention: no log group keeps logs forever; each function
// writes to its own group, the API's access log to a third.
func TestTemplateLogRetention(t *testing.T) {
	m := raw(t)
	res := path(t, m, "Resources").(map[string]any)
	if d := path(t, m, "Parameters", "LogRetentionDays", "Default"); d != 30 {
		t.Errorf("LogRetentionDays default = %v, want 30", d)
	}
	groups := map[string]bool{}
	for name, r := range res {
		rm := r.(map[string]any)
		if rm["Type"] != "AWS::Logs::LogGroup" {
			continue
		}
		groups[name] = true
		if ret := path(t, rm, "Properties", "RetentionInDays"); ret != "LogRetentionDays" {
			t.Errorf("%s RetentionInDays = %v, want !Ref LogRetentionDays", name, ret)
		}
	}
	used := map[string]string{}
	for _, fn := range functionNames {
		g, _ := path(t, function(t, m, fn), "LoggingConfig", "LogGroup").(string)
		if !groups[g] {
			t.Errorf("%s LoggingConfig.LogGroup = %q, not a log group of this template", fn, g)
		}
		if other, dup := used[g]; dup {
			t.Errorf("%s and %s share log group %s", fn, other, g)
		}
		used[g] = fn
	}
	dest := path(t, m, "Resources", "PostbackStage", "Properties", "AccessLogSettings", "DestinationArn").(string)
	if !strings.Contains(dest, "${PostbackAccessLogGroup}") || !groups["PostbackAccessLogGroup"] || used["PostbackAccessLogGroup"] != "" {
		t.Errorf("access log destination = %q, want its own log group", dest)
	}
}

// TestTemplateDeletionPolicies: the data outlives the stack: the table, the
// queues and the secrets are kept when the stack is deleted or a change
// replaces them; the table cannot be deleted at all in prod.
func TestTemplateDeletionPolicies(t *testing.T) {
	m := raw(t)
	kept := map[string]bool{"AWS::DynamoDB::Table": true, "AWS::SQS::Queue": true, "AWS::SecretsManager::Secret": true}
	n := 0
	for name, r := range path(t, m, "Resources").(map[string]any) {
		rm := r.(map[string]any)
		if !kept[rm["Type"].(string)] {
			continue
		}
		n++
		// RetainExceptOnCreate = Retain, except that a failed create's
		// rollback deletes what it made (no leftover named secret).
		if dp := rm["DeletionPolicy"]; dp != "Retain" && dp != "RetainExceptOnCreate" {
			t.Errorf("%s DeletionPolicy = %v", name, dp)
		}
		if urp := rm["UpdateReplacePolicy"]; urp != "Retain" {
			t.Errorf("%s UpdateReplacePolicy = %v", name, urp)
		}
	}
	if n != 11 { // table, 8 queues (the bulk lane's 2 among them), 2 secrets
		t.Errorf("%d data resources, want 11", n)
	}
	dp := strs(path(t, m, "Resources", "MessagesTable", "Properties", "DeletionProtectionEnabled"))
	cond := strs(path(t, m, "Conditions", "IsProd"))
	if len(dp) != 1 || dp[0] != "IsProd" || !slices.Equal(cond, []string{"Env", "prod"}) ||
		!slices.Contains(path(t, m, "Parameters", "Env", "AllowedValues").([]any), any("prod")) {
		t.Errorf("DeletionProtectionEnabled = %v with IsProd = %v", dp, cond)
	}
	if v := path(t, m, "Resources", "MessagesTable", "Properties", "DeletionProtectionEnabled").([]any); v[1] != true || v[2] != false {
		t.Errorf("DeletionProtectionEnabled = %v, want !If [IsProd, true, false]", v)
	}
}

// contextVars are the HTTP API access-log variables that cannot carry the
// token. $context.path, $context.routeKey (the real route's key holds the
// token), $context.resourcePath and the like are not among them.
var contextVars = []string{"$context.requestId", "$context.requestTime", "$context.identity.sourceIp",
	"$context.httpMethod", "$context.protocol", "$context.status", "$context.responseLength",
	"$context.responseLatency", "$context.integrationStatus", "$context.integrationLatency",
	"$context.integrationErrorMessage", "$context.error.message", "$context.identity.userAgent"}

// TestTemplateAccessLogHasNoToken: the access log is JSON made only of
// variables that cannot hold the token (the last path segment).
func TestTemplateAccessLogHasNoToken(t *testing.T) {
	format := path(t, raw(t), "Resources", "PostbackStage", "Properties", "AccessLogSettings", "Format").(string)
	var fields map[string]string
	if err := json.Unmarshal([]byte(format), &fields); err != nil {
		t.Fatalf("access log format is not JSON of strings: %v\n%s", err, format)
	}
	for k, v := range fields {
		if !slices.Contains(contextVars, v) {
			t.Errorf("access log field %s = %q, not a variable known to be free of the token", k, v)
		}
	}
	for _, want := range []string{"$context.requestId", "$context.status", "$context.identity.sourceIp", "$context.integrationStatus"} {
		if !slices.ContainsFunc(slices.Collect(maps.Values(fields)), func(v string) bool { return v == want }) {
			t.Errorf("access log lacks %s", want)
		}
	}
}

// TestTemplatePostbackRoutes: the real token has its own route and
// throttle; every other token falls into {token}, throttled apart, so that a
// flood of wrong tokens cannot use the real route's capacity. The contract's
// URL shape /skycore/postbacks/{token} serves both.
func TestTemplatePostbackRoutes(t *testing.T) {
	m := raw(t)
	res := path(t, m, "Resources").(map[string]any)
	routes := map[string]map[string]any{}
	for name, r := range res {
		if rm := r.(map[string]any); rm["Type"] == "AWS::ApiGatewayV2::Route" {
			routes[name] = rm["Properties"].(map[string]any)
		}
	}
	if len(routes) != 2 {
		t.Fatalf("routes = %v, want the real token's and {token}", slices.Collect(maps.Keys(routes)))
	}
	real, other := routes["PostbackTokenRoute"], routes["PostbackOtherTokensRoute"]
	if real == nil || other == nil {
		t.Fatalf("routes = %v", slices.Collect(maps.Keys(routes)))
	}
	key := real["RouteKey"].([]any) // !Sub [string, {Secret: !If ...}]
	if key[0] != "ANY /skycore/postbacks/{{resolve:secretsmanager:${Secret}:SecretString:postback_token}}" {
		t.Errorf("real route key = %v", key[0])
	}
	if refs := strs(key[1]); !slices.Contains(refs, "PostbackSecret") || !slices.Contains(refs, "ExistingPostbackSecretArn") {
		t.Errorf("real route resolves the token from %v", refs)
	}
	if op, _ := real["OperationName"].(string); !strings.Contains(op, "${PostbackTokenRevision}") {
		t.Errorf("OperationName = %q: nothing forces the route to re-read a changed token", op)
	}
	if other["RouteKey"] != "ANY /skycore/postbacks/{token}" {
		t.Errorf("catch-all route key = %v", other["RouteKey"])
	}
	for name, r := range routes {
		if r["ApiId"] != "PostbackApi" || r["Target"] != "integrations/${PostbackIntegration}" {
			t.Errorf("%s = %v", name, r)
		}
	}
	integ := path(t, res, "PostbackIntegration", "Properties").(map[string]any)
	if integ["IntegrationType"] != "AWS_PROXY" || integ["IntegrationUri"] != "PostbackFunction.Arn" || integ["PayloadFormatVersion"] != "2.0" {
		t.Errorf("integration = %v", integ)
	}
	perm := path(t, res, "PostbackInvokePermission", "Properties").(map[string]any)
	if perm["FunctionName"] != "PostbackFunction" || !strings.HasSuffix(perm["SourceArn"].(string), ":${PostbackApi}/*/*/skycore/postbacks/*") {
		t.Errorf("permission = %v", perm)
	}

	st := path(t, res, "PostbackStage").(map[string]any)
	for _, r := range []string{"PostbackTokenRoute", "PostbackOtherTokensRoute"} {
		if !slices.Contains(strs(st["DependsOn"]), r) {
			t.Errorf("PostbackStage does not depend on %s (its RouteSettings need the route)", r)
		}
	}
	sp := st["Properties"].(map[string]any)
	if sp["StageName"] != "$default" || sp["AutoDeploy"] != true {
		t.Errorf("stage = %v", sp)
	}
	def := sp["DefaultRouteSettings"].(map[string]any)
	wrong := path(t, sp, "RouteSettings", "ANY /skycore/postbacks/{token}").(map[string]any)
	if def["ThrottlingRateLimit"] != "ApiThrottleRate" || def["ThrottlingBurstLimit"] != "ApiThrottleBurst" ||
		wrong["ThrottlingRateLimit"] != "ApiWrongTokenThrottleRate" || wrong["ThrottlingBurstLimit"] != "ApiWrongTokenThrottleBurst" {
		t.Errorf("throttles: default %v, {token} %v", def, wrong)
	}
	p := path(t, m, "Parameters").(map[string]any)
	dflt := func(n string) int { return path(t, p, n, "Default").(int) }
	if dflt("ApiWrongTokenThrottleRate") >= dflt("ApiThrottleRate") || dflt("ApiWrongTokenThrottleBurst") >= dflt("ApiThrottleBurst") {
		t.Error("the wrong-token route is not throttled below the real one")
	}
	if u := path(t, m, "Outputs", "PostbackUrl", "Value").(string); !strings.HasSuffix(u, "/skycore/postbacks/") {
		t.Errorf("PostbackUrl = %q, want it without the token", u)
	}
}

// patternValues lists every duration string of the forms 0, Ns, Nm, Nh
// (N < 100000) that pattern accepts, each parsed. The patterns only accept
// these forms, so this is every value a deploy can set.
func patternValues(t *testing.T, pattern string) map[string]time.Duration {
	t.Helper()
	re := regexp.MustCompile(pattern)
	out := map[string]time.Duration{}
	cands := []string{"0", "", "1h30m", "1.5h", "24H", "-1h", "100ms", "1d"}
	for n := 0; n < 100000; n++ {
		for _, u := range []string{"s", "m", "h"} {
			cands = append(cands, strconv.Itoa(n)+u)
		}
	}
	for _, c := range cands {
		if !re.MatchString(c) {
			continue
		}
		d, err := time.ParseDuration(c)
		if err != nil || d < 0 {
			t.Errorf("pattern %s accepts %q, which the sender cannot parse: %v", pattern, c, err)
		}
		out[c] = d
	}
	return out
}

// TestTemplateRetryWindow: the sender retries by time (SEND_RETRY_WINDOW),
// so the send queue's limits are backstops: the queue keeps a message well
// past any allowed window, and maxReceiveCount stays above the receives the
// back-off needs for it, so that SQS never dead-letters a request silently
// while the sender is still retrying it.
func TestTemplateRetryWindow(t *testing.T) {
	m := raw(t)
	p := path(t, m, "Parameters").(map[string]any)
	windows := patternValues(t, path(t, p, "SendRetryWindow", "AllowedPattern").(string))
	indoubt := patternValues(t, path(t, p, "SendIndoubtWindow", "AllowedPattern").(string))
	defW, defD := windows[path(t, p, "SendRetryWindow", "Default").(string)], indoubt[path(t, p, "SendIndoubtWindow", "Default").(string)]
	if defW != 24*time.Hour || defD != 15*time.Minute {
		t.Errorf("defaults = %v, %v; want 24h, 15m (docs/configuration.md)", defW, defD)
	}
	if _, ok := indoubt["0"]; !ok {
		t.Error(`SendIndoubtWindow refuses "0"`)
	}
	maxW, maxD := slices.Max(slices.Collect(maps.Values(windows))), slices.Max(slices.Collect(maps.Values(indoubt)))

	q := path(t, m, "Resources", "SendQueue", "Properties").(map[string]any)
	retention := time.Duration(q["MessageRetentionPeriod"].(int)) * time.Second
	if retention < 2*(maxW+maxD) {
		t.Errorf("SendQueue keeps messages %v, less than twice the longest window %v + in-doubt %v", retention, maxW, maxD)
	}
	// pkg/sender's back-off: 5 s doubling per receive up to 15 min, with
	// jitter down to half: the fewest seconds between receives.
	const base, capped = 5 * time.Second, 15 * time.Minute
	receives := func(span time.Duration) int {
		n, d := 0, base
		for ; d < capped; d *= 2 {
			span -= d / 2
			n++
		}
		return n + int((span+capped/2-1)/(capped/2)) + 1
	}
	mrc := path(t, q, "RedrivePolicy", "maxReceiveCount").(int)
	if need := receives(defW + defD); mrc < 4*need {
		t.Errorf("maxReceiveCount %d < 4 × the %d receives the default window needs", mrc, need)
	}
	if need := receives(maxW + maxD); mrc < need {
		t.Errorf("maxReceiveCount %d < the %d receives the longest window %v + %v needs", mrc, need, maxW, maxD)
	}
	env := path(t, function(t, m, "SendMmsFunction"), "Environment", "Variables").(map[string]any)
	if env["SEND_RETRY_WINDOW"] != "SendRetryWindow" || env["SEND_INDOUBT_WINDOW"] != "SendIndoubtWindow" {
		t.Errorf("sender windows = %v, %v", env["SEND_RETRY_WINDOW"], env["SEND_INDOUBT_WINDOW"])
	}
}

// samconfig reads samconfig.toml: [section] tables of key = "string" or
// key = """multi-line string""" with line-ending backslashes (TOML).
func samconfig(t *testing.T) map[string]map[string]string {
	t.Helper()
	b, err := os.ReadFile("samconfig.toml")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{"": {}}
	var sec string
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "["):
			sec = strings.Trim(l, "[]")
			out[sec] = map[string]string{}
		default:
			k, v, ok := strings.Cut(l, " = ")
			if !ok {
				t.Fatalf("samconfig.toml line %d: %q", i+1, l)
			}
			if v == `"""\` {
				var sb strings.Builder
				for i++; strings.TrimSpace(lines[i]) != `"""`; i++ {
					sb.WriteString(strings.TrimSuffix(strings.TrimSpace(lines[i]), `\`))
				}
				v = sb.String()
			} else if s, err := strconv.Unquote(v); err == nil {
				v = s
			}
			out[sec][k] = v
		}
	}
	return out
}

// overrides parses sam deploy's parameter_overrides (Key=value Key="value").
func overrides(s string) map[string]string {
	out := map[string]string{}
	for _, mm := range regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S+)`).FindAllStringSubmatch(s, -1) {
		out[mm[1]] = strings.Trim(mm[2], `"`)
	}
	return out
}

// paramError says why value is not allowed for the template parameter p.
func paramError(p map[string]any, value string) string {
	if av, ok := p["AllowedValues"].([]any); ok && !slices.ContainsFunc(av, func(a any) bool { return fmt.Sprint(a) == value }) {
		return fmt.Sprintf("not one of %v", av)
	}
	if ap, ok := p["AllowedPattern"].(string); ok && !regexp.MustCompile("^(?:"+ap+")$").MatchString(value) {
		return "does not match " + ap
	}
	if p["Type"] == "Number" {
		n, err := strconv.Atoi(value)
		if err != nil {
			return "not a number"
		}
		if mn, ok := p["MinValue"].(int); ok && n < mn {
			return fmt.Sprintf("below %d", mn)
		}
		if mx, ok := p["MaxValue"].(int); ok && n > mx {
			return fmt.Sprintf("above %d", mx)
		}
	}
	return ""
}

// TestSamconfigListsEveryParameter: sam deploy keeps the previous value of
// any parameter it is not given, so each environment names every parameter,
// with a value the template accepts; first creates that fail are deleted
// rather than left in ROLLBACK_COMPLETE.
func TestSamconfigListsEveryParameter(t *testing.T) {
	m := raw(t)
	params := path(t, m, "Parameters").(map[string]any)
	for name, p := range params {
		if d, ok := p.(map[string]any)["Default"]; ok {
			if why := paramError(p.(map[string]any), fmt.Sprint(d)); why != "" {
				t.Errorf("template: %s default %v %s", name, d, why)
			}
		}
	}
	cfg := samconfig(t)
	for env, want := range map[string]string{"default": "dev", "prod": "prod"} {
		t.Run(env, func(t *testing.T) {
			dep := cfg[env+".deploy.parameters"]
			if dep == nil {
				t.Fatalf("no [%s.deploy.parameters]", env)
			}
			if dep["on_failure"] != "DELETE" {
				t.Errorf("on_failure = %q, want DELETE", dep["on_failure"])
			}
			ov := overrides(dep["parameter_overrides"])
			if ov["Env"] != want {
				t.Errorf("Env = %q, want %q", ov["Env"], want)
			}
			for name := range params {
				v, ok := ov[name]
				if !ok {
					t.Errorf("%s missing: an update would keep its previous value", name)
					continue
				}
				if why := paramError(params[name].(map[string]any), v); why != "" {
					t.Errorf("%s=%q %s", name, v, why)
				}
			}
			for name := range ov {
				if _, ok := params[name]; !ok {
					t.Errorf("%s is not a template parameter (the deploy would fail)", name)
				}
			}
		})
	}
}

// TestWorkflows: CI deploys dev, then prod, with OIDC per environment, a
// region that cannot be unset, a pinned SAM CLI and actions pinned by SHA;
// the tests run once per push.
func TestWorkflows(t *testing.T) {
	read := func(name string) map[string]any {
		b, err := os.ReadFile(".github/workflows/" + name)
		if err != nil {
			t.Fatal(err)
		}
		var w map[string]any
		if err := yaml.Unmarshal(b, &w); err != nil {
			t.Fatal(err)
		}
		if w["on"] == nil && w["true"] != nil { // YAML 1.1 reads `on` as true
			w["on"] = w["true"]
		}
		return w
	}
	test, deploy := read("test.yml"), read("deploy.yml")
	if _, ok := test["on"].(map[string]any)["push"]; ok {
		t.Error("test.yml runs on push, and deploy.yml runs it again through workflow_call")
	}
	if _, ok := test["on"].(map[string]any)["workflow_call"]; !ok {
		t.Error("test.yml cannot be called by deploy.yml")
	}
	if b := strs(path(t, deploy, "on", "push", "branches")); !slices.Equal(b, []string{"main"}) {
		t.Errorf("deploy.yml branches = %v", b)
	}
	if path(t, deploy, "permissions", "id-token") != "write" {
		t.Error("deploy.yml cannot get an OIDC token")
	}
	cfg := samconfig(t)
	sha := regexp.MustCompile(`^[\w.-]+/[\w.-]+@[0-9a-f]{40}$`)
	jobs := path(t, deploy, "jobs").(map[string]any)
	var deployJobs []string
	for name, j := range jobs {
		jm := j.(map[string]any)
		if u, ok := jm["uses"]; ok {
			if u != "./.github/workflows/test.yml" {
				t.Errorf("job %s uses %v", name, u)
			}
			continue
		}
		deployJobs = append(deployJobs, name)
		env, _ := jm["environment"].(string)
		if env == "" || strings.Contains(env, "${{") {
			t.Errorf("job %s environment = %v, want a fixed one (the OIDC subject names it)", name, jm["environment"])
		}
		vars := jm["env"].(map[string]any)
		ce, _ := vars["CONFIG_ENV"].(string)
		sc := cfg[ce+".deploy.parameters"]
		if sc == nil {
			t.Errorf("job %s CONFIG_ENV = %q: no such samconfig environment", name, ce)
			continue
		}
		if st := cfg[ce+".global.parameters"]["stack_name"]; vars["STACK"] != st {
			t.Errorf("job %s STACK = %v, samconfig says %s", name, vars["STACK"], st)
		}
		var sawSam, sawCreds, sawDeploy, sawRollbackCheck bool
		for _, s := range jm["steps"].([]any) {
			sm := s.(map[string]any)
			with, _ := sm["with"].(map[string]any)
			if u, ok := sm["uses"].(string); ok {
				if !sha.MatchString(u) {
					t.Errorf("job %s: %s is not pinned by commit SHA", name, u)
				}
				switch {
				case strings.HasPrefix(u, "aws-actions/setup-sam@"):
					sawSam = true
					if v, _ := with["version"].(string); !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(v) {
						t.Errorf("job %s: setup-sam version = %v, want a pinned x.y.z", name, with["version"])
					}
				case strings.HasPrefix(u, "aws-actions/configure-aws-credentials@"):
					sawCreds = true
					r := with["aws-region"]
					if r == "${{ env.AWS_REGION }}" { // the workflow's one region variable
						r = path(t, deploy, "env", "AWS_REGION")
					}
					if r != sc["region"] {
						t.Errorf("job %s: aws-region = %v, samconfig %s says %s", name, r, ce, sc["region"])
					}
				}
			}
			run, _ := sm["run"].(string)
			sawDeploy = sawDeploy || strings.Contains(run, `sam deploy --config-env "$CONFIG_ENV"`)
			sawRollbackCheck = sawRollbackCheck || strings.Contains(run, "ROLLBACK_COMPLETE")
		}
		if !sawSam || !sawCreds || !sawDeploy || !sawRollbackCheck {
			t.Errorf("job %s: setup-sam %v, credentials %v, deploy %v, ROLLBACK_COMPLETE check %v", name, sawSam, sawCreds, sawDeploy, sawRollbackCheck)
		}
	}
	slices.Sort(deployJobs)
	if !slices.Equal(deployJobs, []string{"deploy-dev", "deploy-prod"}) {
		t.Fatalf("deploy jobs = %v", deployJobs)
	}
	if n := strs(path(t, jobs, "deploy-prod", "needs")); !slices.Contains(n, "deploy-dev") {
		t.Errorf("deploy-prod needs %v, want deploy-dev", n)
	}
	if n := strs(path(t, jobs, "deploy-dev", "needs")); !slices.Contains(n, "test") {
		t.Errorf("deploy-dev needs %v, want test", n)
	}
	for _, j := range []string{"deploy-dev", "deploy-prod"} {
		if e := path(t, jobs, j, "environment"); e != strings.TrimPrefix(j, "deploy-") {
			t.Errorf("%s environment = %v", j, e)
		}
	}
}

// emittedMetrics lists the EMF metrics the functions write (pkg/metric,
// the names they count with): name → whether it carries dimensions
// besides Function (then only a SEARCH finds it).
func emittedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, n := range metric.All {
		out[n] = len(metric.Dimensions[n]) > 0
	}
	return out
}

// TestReadmeMetrics: README's list of metrics is pkg/metric's, no more,
// no less.
func TestReadmeMetrics(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, list, ok := strings.Cut(string(b), "- Metrics (EMF, ")
	if !ok {
		t.Fatal("README has no \"- Metrics (EMF, …\" item")
	}
	_, list, _ = strings.Cut(list, "):")
	list, _, _ = strings.Cut(list, "\n- ")
	list = regexp.MustCompile("`[^`]*`").ReplaceAllString(list, "") // dimension names
	got := regexp.MustCompile(`\b[A-Z]\w+\b`).FindAllString(list, -1)
	want := slices.Clone(metric.All)
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, slices.Compact(got)); diff != "" {
		t.Errorf("README's metrics (+) differ from pkg/metric's (-):\n%s", diff)
	}
}

// TestTemplateMetricsAreEmitted: the dashboard and the alarms name only
// metrics the code writes, with the dimensions it writes them with, so that
// no widget stays empty and no alarm waits forever for data.
func TestTemplateMetricsAreEmitted(t *testing.T) {
	m := raw(t)
	emitted := emittedMetrics(t)
	fnDims := map[string]bool{}
	for _, f := range []string{"functions/send-mms/main.go", "functions/postback/main.go", "functions/receipt-check/main.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		mm := regexp.MustCompile(`emf\.New\([^,]+, "mmsgate", map\[string\]string\{"Function": "([\w-]+)"\}`).FindSubmatch(b)
		if mm == nil {
			t.Fatalf("%s: no emf.New(…, \"mmsgate\", {\"Function\": …})", f)
		}
		fnDims[string(mm[1])] = true
	}
	check := func(where, name string, dims []string) {
		extra, ok := emitted[name]
		switch {
		case !ok:
			t.Errorf("%s: metric %s is emitted nowhere in pkg/", where, name)
		case extra:
			t.Errorf("%s: %s is emitted with more dimensions than Function: only a SEARCH finds it", where, name)
		case len(dims) != 2 || dims[0] != "Function" || !fnDims[dims[1]]:
			t.Errorf("%s: %s dimensions %v, want Function = one of %v", where, name, dims, fnDims)
		}
	}
	res := path(t, m, "Resources").(map[string]any)
	alarms := 0
	for name, r := range res {
		rm := r.(map[string]any)
		if rm["Type"] != "AWS::CloudWatch::Alarm" {
			continue
		}
		p := rm["Properties"].(map[string]any)
		if p["Namespace"] != "mmsgate" {
			continue
		}
		alarms++
		var dims []string
		for _, d := range p["Dimensions"].([]any) {
			dims = append(dims, d.(map[string]any)["Name"].(string), d.(map[string]any)["Value"].(string))
		}
		check(name, p["MetricName"].(string), dims)
	}
	if alarms < 2 {
		t.Errorf("%d alarms on mmsgate metrics, want ConfigError and Expired at least", alarms)
	}

	body := path(t, res, "Dashboard", "Properties", "DashboardBody").(string) // !Sub text
	var dash struct {
		Widgets []struct {
			Properties struct {
				Title   string
				Metrics [][]any
			}
		}
	}
	if err := json.Unmarshal([]byte(regexp.MustCompile(`\$\{[^}]+\}`).ReplaceAllString(body, "x")), &dash); err != nil {
		t.Fatalf("dashboard body is not JSON: %v", err)
	}
	named := map[string]bool{}
	for _, w := range dash.Widgets {
		for _, row := range w.Properties.Metrics {
			if e, ok := row[0].(map[string]any); ok { // {"expression": "SEARCH(…)"}
				for _, mm := range regexp.MustCompile(`\{mmsgate,([\w,]+)\} MetricName="(\w+)"`).FindAllStringSubmatch(e["expression"].(string), -1) {
					if _, ok := emitted[mm[2]]; !ok {
						t.Errorf("%q: SEARCH for %s, emitted nowhere", w.Properties.Title, mm[2])
					}
					named[mm[2]] = true
				}
				continue
			}
			if row[0] != "mmsgate" {
				continue
			}
			var dims []string
			for _, d := range row[2:] {
				if s, ok := d.(string); ok {
					dims = append(dims, s)
				}
			}
			check(w.Properties.Title, row[1].(string), dims)
			named[row[1].(string)] = true
		}
	}
	// Issue 16's list: outcomes, latency, postbacks by kind.
	for _, want := range []string{"Accepted", "Rejected", "Retried", "Expired", "SkycoreLatency", "Postbacks", "ConfigError"} {
		if !named[want] {
			t.Errorf("the dashboard does not show %s", want)
		}
	}
	if !strings.Contains(body, "ApproximateAgeOfOldestMessage") || !strings.Contains(body, `"5xx"`) || !strings.Contains(body, `"Throttles"`) {
		t.Error("the dashboard lacks the queue age, the API's 5xx or the Lambda throttles")
	}
}

// TestTemplateReceiptCheck: the third function (pkg/receipt) follows the
// others' conventions (SQS event with ReportBatchItemFailures, its own
// queue with a DLQ and an alarm on it), and the receipt queue's limits
// are backstops for every window ReceiptWindow allows: it keeps a check
// well past its due time, and maxReceiveCount is far above the receives
// the longest window needs.
func TestTemplateReceiptCheck(t *testing.T) {
	m := raw(t)
	p := path(t, m, "Parameters").(map[string]any)
	windows := patternValues(t, path(t, p, "ReceiptWindow", "AllowedPattern").(string))
	if d := windows[path(t, p, "ReceiptWindow", "Default").(string)]; d != receipt.DefaultWindow {
		t.Errorf("ReceiptWindow default = %v, want %v", d, receipt.DefaultWindow)
	}
	if _, ok := windows["0"]; !ok {
		t.Error(`ReceiptWindow refuses "0" (off)`)
	}
	for v := range windows {
		if _, _, err := receipt.Window(func(k string) string { return map[string]string{"RECEIPT_WINDOW": v, "RECEIPT_QUEUE_URL": "q"}[k] }); err != nil {
			t.Errorf("ReceiptWindow accepts %q, which the functions refuse: %v", v, err)
		}
	}
	maxW := slices.Max(slices.Collect(maps.Values(windows)))

	fn := function(t, m, "ReceiptCheckFunction")
	timeout := path(t, m, "Globals", "Function", "Timeout").(int)
	if ft, ok := fn["Timeout"].(int); ok {
		timeout = ft
	}
	q := path(t, m, "Resources", "ReceiptCheckQueue", "Properties").(map[string]any)
	if vt := q["VisibilityTimeout"].(int); vt < 6*timeout {
		t.Errorf("ReceiptCheckQueue VisibilityTimeout %d < 6 × function timeout %d", vt, timeout)
	}
	if retention := time.Duration(q["MessageRetentionPeriod"].(int)) * time.Second; retention < 2*maxW {
		t.Errorf("ReceiptCheckQueue keeps messages %v, less than twice the longest window %v", retention, maxW)
	}
	// pkg/receipt: delayed 15 min, then visibility waits of 12h less a
	// minute, then the receive at due; busy and failed checks come back in
	// 5-30 s.
	receives := 1 + int((maxW-receipt.MaxDelay+(12*time.Hour-time.Minute)-1)/(12*time.Hour-time.Minute)) + 1
	rp := q["RedrivePolicy"].(map[string]any)
	if mrc := rp["maxReceiveCount"].(int); mrc < 20*receives {
		t.Errorf("maxReceiveCount %d < 20 × the %d receives the longest window %v needs", mrc, receives, maxW)
	}
	if rp["deadLetterTargetArn"] != "ReceiptCheckDeadLetterQueue.Arn" {
		t.Errorf("RedrivePolicy = %v", rp)
	}
	if r := path(t, m, "Resources", "ReceiptCheckDeadLetterQueue", "Properties", "MessageRetentionPeriod"); r != 1209600 {
		t.Errorf("receipt DLQ retention = %v, want 14 days", r)
	}
	alarmed := false
	for _, r := range path(t, m, "Resources").(map[string]any) {
		rm := r.(map[string]any)
		if rm["Type"] != "AWS::CloudWatch::Alarm" {
			continue
		}
		ap := rm["Properties"].(map[string]any)
		dims, _ := ap["Dimensions"].([]any) // none on a metric-math alarm
		for _, d := range dims {
			if d.(map[string]any)["Value"] == "ReceiptCheckDeadLetterQueue.QueueName" && ap["MetricName"] == "ApproximateNumberOfMessagesVisible" && ap["Threshold"] == 0 {
				alarmed = true
			}
		}
	}
	if !alarmed {
		t.Error("no alarm on the receipt DLQ's depth")
	}

	ev := path(t, fn, "Events", "ReceiptCheckQueue").(map[string]any)
	props := ev["Properties"].(map[string]any)
	if ev["Type"] != "SQS" || props["Queue"] != "ReceiptCheckQueue.Arn" {
		t.Errorf("event = %v", ev)
	}
	if frt := strs(props["FunctionResponseTypes"]); !slices.Equal(frt, []string{"ReportBatchItemFailures"}) {
		t.Errorf("FunctionResponseTypes = %v (without it a check not yet due deletes its whole batch)", frt)
	}
	if bs, _ := props["BatchSize"].(int); bs < 1 || bs > 10 {
		t.Errorf("BatchSize = %v, want 1-10 (with a 0 s batching window)", props["BatchSize"])
	}
	if mc := path(t, props, "ScalingConfig", "MaximumConcurrency"); mc == nil {
		t.Error("ScalingConfig.MaximumConcurrency missing")
	}
	if meta := path(t, m, "Resources", "ReceiptCheckFunction", "Metadata", "BuildMethod"); meta != "makefile" {
		t.Errorf("BuildMethod = %v", meta)
	}
	env := func(fn string) map[string]any {
		return path(t, function(t, m, fn), "Environment", "Variables").(map[string]any)
	}
	for _, f := range []string{"SendMmsFunction", "PostbackFunction"} {
		if e := env(f); e["RECEIPT_WINDOW"] != "ReceiptWindow" || e["RECEIPT_QUEUE_URL"] != "ReceiptCheckQueue" {
			t.Errorf("%s RECEIPT_WINDOW = %v, RECEIPT_QUEUE_URL = %v", f, e["RECEIPT_WINDOW"], e["RECEIPT_QUEUE_URL"])
		}
	}
	if e := env("ReceiptCheckFunction"); e["RECEIPT_QUEUE_URL"] != "ReceiptCheckQueue" || e["DELIVERY_EVENTS_QUEUE_URL"] != "DeliveryEventsQueue" {
		t.Errorf("ReceiptCheckFunction env = %v", e)
	}
}

// TestTemplateReceiptQueueWriters: a message on the receipt queue makes
// the check publish an event, so only the sender and postback roles may
// send to it: no other function is granted it, and the queue policy denies
// every other principal. The check itself may only receive, delete and
// change the visibility of its checks, and send delivery events.
func TestTemplateReceiptQueueWriters(t *testing.T) {
	m := raw(t)
	sends := map[string][]string{} // function → queues it may send to
	for _, fn := range functionNames {
		for _, s := range statements(t, m, fn) {
			if !s.grants("sqs:SendMessage") {
				continue
			}
			for _, r := range s.Resources {
				if r == "*" || strings.Contains(r, "*") {
					t.Errorf("%s may send to %q", fn, r)
				}
				sends[fn] = append(sends[fn], r)
			}
		}
	}
	var writers []string
	for fn, qs := range sends {
		if slices.ContainsFunc(qs, func(r string) bool { return strings.HasPrefix(r, "ReceiptCheckQueue.") }) {
			writers = append(writers, fn)
		}
	}
	slices.Sort(writers)
	if !slices.Equal(writers, []string{"PostbackFunction", "SendMmsFunction"}) {
		t.Errorf("functions that may send to ReceiptCheckQueue = %v, want the sender and the postback function", writers)
	}
	if got := sends["ReceiptCheckFunction"]; !slices.Equal(got, []string{"DeliveryEventsQueue.QueueName"}) {
		t.Errorf("ReceiptCheckFunction may send to %v, want only the delivery events queue", got)
	}
	var pollsOwn bool
	for _, s := range statements(t, m, "ReceiptCheckFunction") {
		if s.grants("sqs:ChangeMessageVisibility") {
			pollsOwn = slices.Equal(s.Resources, []string{"ReceiptCheckQueue.QueueName"})
		}
	}
	if !pollsOwn {
		t.Error("ReceiptCheckFunction cannot change the visibility of its own queue's messages (only)")
	}

	var policies []map[string]any
	for _, r := range path(t, m, "Resources").(map[string]any) {
		rm := r.(map[string]any)
		if rm["Type"] == "AWS::SQS::QueuePolicy" && slices.Contains(strs(path(t, rm, "Properties", "Queues")), "ReceiptCheckQueue") {
			policies = append(policies, rm["Properties"].(map[string]any))
		}
	}
	if len(policies) != 1 {
		t.Fatalf("%d queue policies on ReceiptCheckQueue, want 1", len(policies))
	}
	stmts := path(t, policies[0], "PolicyDocument", "Statement").([]any)
	if len(stmts) != 1 {
		t.Fatalf("queue policy statements = %v", stmts)
	}
	st := stmts[0].(map[string]any)
	cond, _ := path(t, st, "Condition", "ArnNotEquals").(map[string]any)
	roles := strs(cond["aws:PrincipalArn"])
	slices.Sort(roles)
	if st["Effect"] != "Deny" || st["Principal"] != "*" || !slices.ContainsFunc(strs(st["Action"]), func(a string) bool { return allows(a, "sqs:SendMessage") }) ||
		!slices.Equal(roles, []string{"PostbackFunctionRole.Arn", "SendMmsFunctionRole.Arn"}) || st["Resource"] != "ReceiptCheckQueue.Arn" {
		t.Errorf("queue policy = %v, want SendMessage denied to all but the sender's and the postback function's roles", st)
	}
}

// TestTemplateBulkLane: the bulk queue is SendQueue's twin (visibility,
// retention, redrive to its own DLQ, alarmed, on the dashboard), read by
// the same function through a second event source mapping with the same
// settings, named to it in BULK_SEND_QUEUE_URL, and output.
func TestTemplateBulkLane(t *testing.T) {
	m := raw(t)
	res := path(t, m, "Resources").(map[string]any)
	send := path(t, res, "SendQueue", "Properties").(map[string]any)
	bulk := path(t, res, "BulkSendQueue", "Properties").(map[string]any)
	for _, k := range []string{"VisibilityTimeout", "MessageRetentionPeriod", "SqsManagedSseEnabled"} {
		if fmt.Sprint(bulk[k]) != fmt.Sprint(send[k]) {
			t.Errorf("BulkSendQueue %s = %v, SendQueue's %v", k, bulk[k], send[k])
		}
	}
	rp := bulk["RedrivePolicy"].(map[string]any)
	if fmt.Sprint(rp["deadLetterTargetArn"]) != "BulkSendDeadLetterQueue.Arn" ||
		fmt.Sprint(rp["maxReceiveCount"]) != fmt.Sprint(path(t, send, "RedrivePolicy", "maxReceiveCount")) {
		t.Errorf("bulk RedrivePolicy = %v", rp)
	}
	alarmed := false
	for _, r := range res {
		rm := r.(map[string]any)
		if rm["Type"] == "AWS::CloudWatch::Alarm" && strings.Contains(fmt.Sprint(rm["Properties"].(map[string]any)["Dimensions"]), "BulkSendDeadLetterQueue") {
			alarmed = true
		}
	}
	if !alarmed {
		t.Error("no alarm on the bulk dead-letter queue")
	}
	board := path(t, res, "Dashboard", "Properties", "DashboardBody").(string)
	for _, q := range []string{"${BulkSendQueue.QueueName}", "${BulkSendDeadLetterQueue.QueueName}"} {
		if !strings.Contains(board, q) {
			t.Errorf("dashboard has no %s", q)
		}
	}
	fn := function(t, m, "SendMmsFunction")
	evs := path(t, fn, "Events").(map[string]any)
	txp := path(t, evs, "SendQueue", "Properties").(map[string]any)
	bp := path(t, evs, "BulkSendQueue", "Properties").(map[string]any)
	if bp["Queue"] != "BulkSendQueue.Arn" {
		t.Errorf("bulk event source = %v", bp["Queue"])
	}
	for k, v := range txp {
		if k != "Queue" && fmt.Sprint(bp[k]) != fmt.Sprint(v) {
			t.Errorf("bulk event %s = %v, the transactional one's %v", k, bp[k], v)
		}
	}
	vars := path(t, fn, "Environment", "Variables").(map[string]any)
	if vars["BULK_DEAD_LETTER_QUEUE_URL"] != "BulkSendDeadLetterQueue" {
		t.Errorf("BULK_DEAD_LETTER_QUEUE_URL = %v, want the bulk DLQ (a bulk body's DLQ moves)", vars["BULK_DEAD_LETTER_QUEUE_URL"])
	}
	bulkDLQ := false
	for _, s := range statements(t, m, "SendMmsFunction") {
		bulkDLQ = bulkDLQ || s.grants("sqs:SendMessage") && slices.Contains(s.Resources, "BulkSendDeadLetterQueue.QueueName")
	}
	if !bulkDLQ {
		t.Error("the sender may not send to BulkSendDeadLetterQueue")
	}
	if vars["BULK_SEND_QUEUE_URL"] != "BulkSendQueue" || vars["SKYCORE_RATE_LIMIT"] != "SkycoreRateLimit" {
		t.Errorf("BULK_SEND_QUEUE_URL = %v, SKYCORE_RATE_LIMIT = %v", vars["BULK_SEND_QUEUE_URL"], vars["SKYCORE_RATE_LIMIT"])
	}
	// The sender reads and hands off on both lanes.
	var polls, sends bool
	for _, s := range statements(t, m, "SendMmsFunction") {
		if slices.Contains(s.Resources, "BulkSendQueue.QueueName") {
			polls = polls || s.grants("sqs:ReceiveMessage")
			sends = sends || s.grants("sqs:SendMessage")
		}
	}
	if !polls || !sends {
		t.Errorf("sender on the bulk queue: receive %v, send %v", polls, sends)
	}
	out := path(t, m, "Outputs").(map[string]any)
	for _, k := range []string{"BulkSendQueueUrl", "BulkSendQueueArn", "BulkSendDeadLetterQueueUrl"} {
		if _, ok := out[k]; !ok {
			t.Errorf("output %s missing", k)
		}
	}
	if d := path(t, m, "Parameters", "SkycoreRateLimit", "Default"); d != "0" {
		t.Errorf("SkycoreRateLimit default %v, want 0 (off)", d)
	}
}

// TestTemplateRefusesRetentionBelowReceiptWindow: the template's rules
// refuse every MessagesTtlDays and ReceiptWindow pair the parameters'
// patterns accept and receipt.CheckRetention refuses (a record that runs
// out before its receipt check); for 0 and whole hours they refuse nothing
// more. (Minutes and seconds under an 8-day TTL are refused as well: rules
// cannot compare durations.)
func TestTemplateRefusesRetentionBelowReceiptWindow(t *testing.T) {
	m := raw(t)
	params := path(t, m, "Parameters").(map[string]any)
	winPat := regexp.MustCompile(path(t, params, "ReceiptWindow", "AllowedPattern").(string))
	ttlPat := regexp.MustCompile(path(t, params, "MessagesTtlDays", "AllowedPattern").(string))
	rules, _ := m["Rules"].(map[string]any)
	if len(rules) == 0 {
		t.Fatal("template.yaml has no Rules")
	}
	ref := func(v any) string { // {Ref: X} → the parameter's value
		if r, ok := v.(map[string]any); ok {
			return r["Ref"].(string)
		}
		return ""
	}
	// allowed evaluates the rules (Fn::Equals conditions, Fn::Contains
	// assertions: all this template uses) for one pair of values.
	allowed := func(ttl, window string) bool {
		vals := map[string]string{"MessagesTtlDays": ttl, "ReceiptWindow": window}
		for _, r := range rules {
			rule := r.(map[string]any)
			if c, ok := rule["RuleCondition"]; ok {
				eq := c.(map[string]any)["Fn::Equals"].([]any)
				if vals[ref(eq[0])] != eq[1].(string) {
					continue
				}
			}
			for _, a := range rule["Assertions"].([]any) {
				args := a.(map[string]any)["Assert"].(map[string]any)["Fn::Contains"].([]any)
				if !slices.Contains(args[0].([]any), any(vals[ref(args[1])])) {
					return false
				}
			}
		}
		return true
	}
	var windows []string
	for _, unit := range []string{"s", "m", "h"} {
		for n := 1; n <= 9999; n++ {
			if w := strconv.Itoa(n) + unit; winPat.MatchString(w) {
				windows = append(windows, w)
			}
		}
	}
	windows = append(windows, "0")
	for days := 1; days <= 10; days++ {
		ttl := strconv.Itoa(days)
		if !ttlPat.MatchString(ttl) {
			t.Fatalf("MessagesTtlDays pattern refuses %s", ttl)
		}
		for _, w := range windows {
			d, err := time.ParseDuration(w)
			if err != nil {
				t.Fatal(err)
			}
			goOK := receipt.CheckRetention(time.Duration(days)*24*time.Hour, d) == nil
			tplOK := allowed(ttl, w)
			if tplOK && !goOK {
				t.Errorf("MessagesTtlDays %s, ReceiptWindow %s: the template accepts what the functions refuse", ttl, w)
			}
			if (w == "0" || strings.HasSuffix(w, "h")) && tplOK != goOK {
				t.Errorf("MessagesTtlDays %s, ReceiptWindow %s: template %v, functions %v", ttl, w, tplOK, goOK)
			}
		}
	}
	if allowed("1", "24h") || !allowed("1", "23h") || !allowed("30", "168h") {
		t.Error("the rules do not refuse a 1-day TTL with the default 24h window, or refuse a valid pair")
	}
}

// TestTemplateScheduleSweep: the schedule-sweep function (pkg/schedule)
// runs at the sweeper's period, declares exactly what it reads, may query
// only the due index (declared as pkg/store defines it), update and read
// only msg# items, and send only to the two send queues; the Makefile builds it.
func TestTemplateScheduleSweep(t *testing.T) {
	m := raw(t)
	fn := function(t, m, "ScheduleSweepFunction")
	vars := path(t, fn, "Environment", "Variables").(map[string]any)
	if got, want := slices.Sorted(maps.Keys(vars)), slices.Sorted(slices.Values(schedule.EnvVars)); !slices.Equal(got, want) {
		t.Errorf("variables %v, want exactly what pkg/schedule reads: %v", got, want)
	}
	ev := path(t, fn, "Events", "Sweep").(map[string]any)
	if ev["Type"] != "Schedule" || path(t, ev, "Properties", "Schedule") != "rate(1 minute)" || schedule.Period != time.Minute {
		t.Errorf("sweep event %v, want rate(1 minute) = schedule.Period %v", ev, schedule.Period)
	}
	if to := fn["Timeout"].(int); time.Duration(to)*time.Second > schedule.Period {
		t.Errorf("Timeout %ds longer than the period: sweeps would pile up", to)
	}

	idx, defs := store.DueIndexDefinition()
	table := path(t, m, "Resources", "MessagesTable", "Properties").(map[string]any)
	var gsi map[string]any
	for _, g := range table["GlobalSecondaryIndexes"].([]any) {
		if g.(map[string]any)["IndexName"] == *idx.IndexName {
			gsi = g.(map[string]any)
		}
	}
	if gsi == nil {
		t.Fatalf("MessagesTable has no index %s", *idx.IndexName)
	}
	if pt := path(t, gsi, "Projection", "ProjectionType"); pt != string(idx.Projection.ProjectionType) {
		t.Errorf("projection %v, want %s", pt, idx.Projection.ProjectionType)
	}
	for i, k := range gsi["KeySchema"].([]any) {
		km := k.(map[string]any)
		if km["AttributeName"] != *idx.KeySchema[i].AttributeName || km["KeyType"] != string(idx.KeySchema[i].KeyType) {
			t.Errorf("key %d = %v, want %s %s", i, km, *idx.KeySchema[i].AttributeName, idx.KeySchema[i].KeyType)
		}
	}
	attrs := map[string]any{}
	for _, a := range table["AttributeDefinitions"].([]any) {
		am := a.(map[string]any)
		attrs[am["AttributeName"].(string)] = am["AttributeType"]
	}
	for _, d := range defs {
		if attrs[*d.AttributeName] != string(d.AttributeType) {
			t.Errorf("attribute %s defined as %v, want %s", *d.AttributeName, attrs[*d.AttributeName], d.AttributeType)
		}
	}

	var dynamo, sends []string
	for _, s := range statements(t, m, "ScheduleSweepFunction") {
		for _, a := range s.Actions {
			if strings.Contains(a, "dynamodb:") {
				if strings.Contains(a, "*") {
					t.Errorf("wildcard action %s", a)
				}
				dynamo = append(dynamo, a)
				want := "MessagesTable.Arn"
				if a == "dynamodb:Query" {
					want = "${MessagesTable.Arn}/index/" + store.DueIndex
				}
				if !slices.Equal(s.Resources, []string{want}) {
					t.Errorf("%s on %v, want only %s", a, s.Resources, want)
				}
				if a != "dynamodb:Query" {
					all, _ := s.Condition["ForAllValues:StringLike"].(map[string]any)
					if got := strs(all["dynamodb:LeadingKeys"]); !slices.Equal(got, []string{"msg#*"}) {
						t.Errorf("%s LeadingKeys %v, want [msg#*]", a, got)
					}
				}
			}
		}
		if s.grants("sqs:SendMessage") {
			sends = append(sends, s.Resources...)
		}
		if s.grants("sqs:ReceiveMessage") || s.grants("sqs:DeleteMessage") || s.grants("secretsmanager:GetSecretValue") {
			t.Errorf("grants more than it needs: %v", s.Actions)
		}
	}
	slices.Sort(dynamo)
	if want := []string{"dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"}; !slices.Equal(dynamo, want) {
		t.Errorf("DynamoDB actions %v, want %v", dynamo, want)
	}
	slices.Sort(sends)
	if !slices.Equal(sends, []string{"BulkSendQueue.QueueName", "SendQueue.QueueName"}) {
		t.Errorf("sends to %v, want only the two send queues (a bulk request goes back to its lane)", sends)
	}
	if got := vars["BULK_SEND_QUEUE_URL"]; got != "BulkSendQueue" {
		t.Errorf("BULK_SEND_QUEUE_URL = %v, want the bulk queue", got)
	}
	// No other function may query the table.
	for _, other := range functionNames {
		for _, s := range statements(t, m, other) {
			if s.grants("dynamodb:Query") {
				t.Errorf("%s may Query", other)
			}
		}
	}

	mk, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^build-ScheduleSweepFunction:\n\t\$\(LAMBDA_ENV\) \$\(GO\) build \$\(LAMBDA_FLAGS\) -o \$\(ARTIFACTS_DIR\)/bootstrap \./functions/schedule-sweep$`)
	if !re.Match(mk) {
		t.Error("Makefile lacks build-ScheduleSweepFunction")
	}
	if meta := path(t, m, "Resources", "ScheduleSweepFunction", "Metadata", "BuildMethod"); meta != "makefile" {
		t.Errorf("BuildMethod = %v", meta)
	}
}

// TestTemplateStaticEgress: with StaticEgressIp the sender's subnets route
// everything to the NAT gateway holding the stack's Elastic IP, whose own
// subnet routes to the internet gateway; the IP is an output; nothing of
// it exists without the option, and no other function is in the VPC.
func TestTemplateStaticEgress(t *testing.T) {
	m := raw(t)
	res := path(t, m, "Resources").(map[string]any)
	for name, r := range res {
		rm := r.(map[string]any)
		if strings.HasPrefix(name, "Egress") && rm["Condition"] != "CreateEgressNetwork" {
			t.Errorf("%s exists without StaticEgressIp, or beside the deployer's own subnets", name)
		}
		if name != "SendMmsFunction" && rm["Type"] == "AWS::Serverless::Function" {
			if _, ok := rm["Properties"].(map[string]any)["VpcConfig"]; ok {
				t.Errorf("%s is in the VPC: only the sender calls Skycore", name)
			}
		}
	}
	vpc := path(t, res, "SendMmsFunction", "Properties", "VpcConfig").([]any)
	if len(vpc) != 3 || vpc[0] != "HasStaticEgress" || vpc[2] != "AWS::NoValue" {
		t.Fatalf("sender VpcConfig = %v, want it only with HasStaticEgress", vpc)
	}
	// With EgressSubnetIds, the deployer's own subnets; else the stack's.
	own := vpc[1].([]any)
	if len(own) != 3 || own[0] != "UseExistingEgressSubnets" {
		t.Fatalf("sender VpcConfig with the option = %v, want the deployer's subnets or the stack's", own)
	}
	on := own[2].(map[string]any)
	// routeOf returns the default route of the table associated with subnet.
	routeOf := func(subnet string) map[string]any {
		for _, r := range res {
			rm := r.(map[string]any)
			p, _ := rm["Properties"].(map[string]any)
			if rm["Type"] != "AWS::EC2::SubnetRouteTableAssociation" || p["SubnetId"] != subnet {
				continue
			}
			for _, r2 := range res {
				rm2 := r2.(map[string]any)
				p2, _ := rm2["Properties"].(map[string]any)
				if rm2["Type"] == "AWS::EC2::Route" && p2["RouteTableId"] == p["RouteTableId"] && p2["DestinationCidrBlock"] == "0.0.0.0/0" {
					return p2
				}
			}
		}
		t.Fatalf("subnet %s has no default route", subnet)
		return nil
	}
	subnets := strs(on["SubnetIds"])
	if len(subnets) < 2 {
		t.Errorf("sender subnets %v: want two (two availability zones)", subnets)
	}
	for _, s := range subnets {
		if r := routeOf(s); r["NatGatewayId"] != "EgressNatGateway" {
			t.Errorf("subnet %s routes to %v, want the NAT gateway", s, r)
		}
	}
	nat := path(t, res, "EgressNatGateway", "Properties").(map[string]any)
	if nat["AllocationId"] != "EgressIp.AllocationId" {
		t.Errorf("NAT gateway's address = %v, want the stack's Elastic IP", nat["AllocationId"])
	}
	if r := routeOf(nat["SubnetId"].(string)); r["GatewayId"] != "EgressInternetGateway" {
		t.Errorf("the NAT gateway's subnet routes to %v, want the internet gateway", r)
	}
	out := path(t, m, "Outputs", "EgressIp").(map[string]any)
	if out["Value"] != "EgressIp" || out["Condition"] != "CreateEgressNetwork" {
		t.Errorf("output EgressIp = %v", out)
	}
	if d := path(t, m, "Parameters", "StaticEgressIp", "Default"); d != "false" {
		t.Errorf("StaticEgressIp defaults to %v, want false (the NAT gateway costs money idle)", d)
	}
}
