// Package mmsgate holds the tests of the deployment files at the top of
// the repository: template.yaml (with goformation plus a raw YAML read,
// since goformation drops some SQS event fields and lacks LoggingConfig),
// env.json and the Makefile's SAM build targets.
package mmsgate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/intrinsics"
	"gopkg.in/yaml.v3"

	"github.com/mmsgate/mmsgate/pkg/postback"
	"github.com/mmsgate/mmsgate/pkg/sender"
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
	// does not know, so it is checked below from the raw YAML instead.
	b, _ := os.ReadFile("template.yaml")
	re := regexp.MustCompile(`(?m)^    LoggingConfig:\n(      .*\n)+`)
	tmp := t.TempDir() + "/template.yaml"
	os.WriteFile(tmp, re.ReplaceAll(b, nil), 0o644)
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
	for _, name := range []string{"SendMmsFunction", "PostbackFunction"} {
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
	if _, err := tpl.GetServerlessHttpApiWithName("PostbackApi"); err != nil {
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

func function(t *testing.T, m map[string]any, name string) map[string]any {
	return path(t, m, "Resources", name, "Properties").(map[string]any)
}

func TestFunctions(t *testing.T) {
	m := raw(t)
	for name, reads := range map[string][]string{"SendMmsFunction": sender.EnvVars, "PostbackFunction": postback.EnvVars} {
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
	if rp["maxReceiveCount"] != 5 || !strings.Contains(rp["deadLetterTargetArn"].(string), "SendDeadLetterQueue") {
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
}

func TestPostbackRouteAndAPI(t *testing.T) {
	m := raw(t)
	ev := path(t, function(t, m, "PostbackFunction"), "Events", "Postback").(map[string]any)
	p := ev["Properties"].(map[string]any)
	if ev["Type"] != "HttpApi" || p["Path"] != "/skycore/postbacks/{token}" || p["Method"] != "ANY" {
		t.Errorf("postback event = %v", ev)
	}
	rs := path(t, m, "Resources", "PostbackApi", "Properties", "DefaultRouteSettings").(map[string]any)
	if rs["ThrottlingBurstLimit"] == nil || rs["ThrottlingRateLimit"] == nil {
		t.Errorf("HttpApi throttling = %v", rs)
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

func TestPoliciesScoped(t *testing.T) {
	m := raw(t)
	allowed := map[string]bool{"SQSPollerPolicy": true, "SQSSendMessagePolicy": true, "DynamoDBCrudPolicy": true, "AWSSecretsManagerGetSecretValuePolicy": true}
	want := map[string][]string{
		"SendMmsFunction":  {"SQSPollerPolicy", "SQSSendMessagePolicy", "DynamoDBCrudPolicy", "AWSSecretsManagerGetSecretValuePolicy"},
		"PostbackFunction": {"SQSSendMessagePolicy", "DynamoDBCrudPolicy", "AWSSecretsManagerGetSecretValuePolicy"},
	}
	for name, names := range want {
		var got []string
		for _, p := range function(t, m, name)["Policies"].([]any) {
			pm, ok := p.(map[string]any)
			if !ok {
				t.Errorf("%s: managed policy %v is not scoped", name, p)
				continue
			}
			for k, v := range pm {
				if !allowed[k] {
					t.Errorf("%s: unexpected policy %s", name, k)
				}
				for pk, pv := range v.(map[string]any) {
					// A plain reference, or an !If [cond, a, b] of references.
					refs := []any{pv}
					if l, ok := pv.([]any); ok && len(l) == 3 {
						refs = l[1:]
					}
					for _, r := range refs {
						if s, _ := r.(string); s == "" || strings.Contains(s, "*") {
							t.Errorf("%s: %s.%s = %v, want a resource of this stack", name, k, pk, pv)
						}
					}
				}
				got = append(got, k)
			}
		}
		for _, n := range names {
			if !slices.Contains(got, n) {
				t.Errorf("%s lacks %s", name, n)
			}
		}
	}
}

func TestAlarmsAndOutputs(t *testing.T) {
	m := raw(t)
	res := path(t, m, "Resources").(map[string]any)
	metrics := map[string]bool{}
	for _, r := range res {
		rm := r.(map[string]any)
		if rm["Type"] == "AWS::CloudWatch::Alarm" {
			metrics[rm["Properties"].(map[string]any)["MetricName"].(string)] = true
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
			fns = []string{"SendMmsFunction", "PostbackFunction"}
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
	for _, def := range []string{"LAMBDA_ENV   := CGO_ENABLED=0 GOOS=linux GOARCH=arm64", `LAMBDA_FLAGS := -tags lambda.norpc -trimpath -ldflags "-s -w"`} {
		if !strings.Contains(mk, def) {
			t.Errorf("Makefile lacks %q", def)
		}
	}
	for fn, dir := range map[string]string{"SendMmsFunction": "send-mms", "PostbackFunction": "postback"} {
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
