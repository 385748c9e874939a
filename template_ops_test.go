package mmsgate

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"
)

// What operators and applications need from the stack on day two: alarms
// for what they would otherwise miss, saved queries, the application's
// policy and outputs, and no silent first-deploy traps.

// alarmAction is the AlarmActions every alarm carries (after stripTags).
var alarmAction = []any{"HasAlarmAction", []any{[]any{"HasAlarmTopic", "AlarmTopicArn", "AlarmTopic"}}, "AWS::NoValue"}

// metricStats lists an alarm's metrics as "namespace/name dim=value...",
// from its own MetricName or from each MetricStat of a metric-math alarm.
func metricStats(t *testing.T, p map[string]any) []string {
	t.Helper()
	one := func(ns, name any, dims any) string {
		s := ns.(string) + "/" + name.(string)
		ds, _ := dims.([]any)
		for _, d := range ds {
			dm := d.(map[string]any)
			s += " " + dm["Name"].(string) + "=" + dm["Value"].(string)
		}
		return s
	}
	if name, ok := p["MetricName"]; ok {
		return []string{one(p["Namespace"], name, p["Dimensions"])}
	}
	var out []string
	for _, q := range p["Metrics"].([]any) {
		if ms, ok := q.(map[string]any)["MetricStat"].(map[string]any); ok {
			m := ms["Metric"].(map[string]any)
			out = append(out, one(m["Namespace"], m["MetricName"], m["Dimensions"]))
		}
	}
	return out
}

func TestTemplateOperatorAlarms(t *testing.T) {
	m := raw(t)
	res := path(t, m, "Resources").(map[string]any)
	tests := map[string]struct {
		metrics   []string
		threshold any
	}{
		"DeliveryEventsAgeAlarm": {[]string{"AWS/SQS/ApproximateAgeOfOldestMessage QueueName=DeliveryEventsQueue.QueueName"}, "DeliveryEventsMaxAgeSeconds"},
		"NoPostbacksAlarm": {[]string{"mmsgate/Accepted Function=send-mms", "AWS/Lambda/Invocations FunctionName=PostbackFunction",
			"mmsgate/Rejected403 Function=postback"}, 0},
		"Rejected403Alarm":  {[]string{"mmsgate/Rejected403 Function=postback"}, "Rejected403AlarmThreshold"},
		"UnknownCodeAlarm":  {[]string{"mmsgate/UnknownCode Function=send-mms"}, 0},
		"LinkConflictAlarm": {[]string{"mmsgate/LinkConflict Function=send-mms", "mmsgate/LinkConflict Function=postback"}, 0},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p := path(t, res, name, "Properties").(map[string]any)
			if diff := cmp.Diff(tt.metrics, metricStats(t, p)); diff != "" {
				t.Errorf("metrics (-want +got):\n%s", diff)
			}
			if p["Threshold"] != tt.threshold || p["ComparisonOperator"] != "GreaterThanThreshold" {
				t.Errorf("threshold %v %v, want > %v", p["ComparisonOperator"], p["Threshold"], tt.threshold)
			}
			if p["TreatMissingData"] != "notBreaching" {
				t.Errorf("TreatMissingData = %v: no traffic is not an alarm", p["TreatMissingData"])
			}
			if diff := cmp.Diff(alarmAction, p["AlarmActions"]); diff != "" {
				t.Errorf("AlarmActions (-want +got):\n%s", diff)
			}
			if d, _ := p["AlarmDescription"].(string); len(d) < 40 {
				t.Errorf("AlarmDescription %q: say what it means and what to do", d)
			}
			// A metric-math alarm returns exactly one series, from its own ids.
			if qs, ok := p["Metrics"].([]any); ok {
				var ids, returned []string
				expr := ""
				for _, q := range qs {
					qm := q.(map[string]any)
					ids = append(ids, qm["Id"].(string))
					if qm["ReturnData"] == true {
						returned = append(returned, qm["Id"].(string))
						expr, _ = qm["Expression"].(string)
					}
				}
				if len(returned) != 1 || expr == "" {
					t.Fatalf("returned series %v (expression %q), want one expression", returned, expr)
				}
				for _, id := range regexp.MustCompile(`FILL\((\w+)`).FindAllStringSubmatch(expr, -1) {
					if !slices.Contains(ids, id[1]) {
						t.Errorf("expression %q uses %s, not a metric of the alarm", expr, id[1])
					}
				}
			}
		})
	}

	// Every mmsgate metric an alarm names is emitted by the code, with the
	// Function dimension alone (as TestTemplateMetricsAreEmitted checks for
	// single-metric alarms; this covers the metric-math ones too).
	emitted := emittedMetrics(t)
	for name, r := range res {
		rm := r.(map[string]any)
		if rm["Type"] != "AWS::CloudWatch::Alarm" {
			continue
		}
		for _, ms := range metricStats(t, rm["Properties"].(map[string]any)) {
			metric, ok := strings.CutPrefix(ms, "mmsgate/")
			if !ok {
				continue
			}
			f := strings.Fields(metric)
			if extra, ok := emitted[f[0]]; !ok || extra || len(f) != 2 || !strings.HasPrefix(f[1], "Function=") {
				t.Errorf("%s: %s is not emitted by pkg/ with the Function dimension alone", name, ms)
			}
		}
	}

	// NoPostbackAlarmHours: each allowed value maps to its seconds, within
	// CloudWatch's one-day limit for an alarm's evaluation range.
	hours := path(t, m, "Parameters", "NoPostbackAlarmHours", "AllowedValues").([]any)
	for _, h := range hours {
		n, _ := strconv.Atoi(h.(string))
		got := path(t, m, "Mappings", "Hours", h.(string), "Seconds")
		if got != n*3600 || n*3600 > 86400 {
			t.Errorf("Hours[%s] = %v seconds, want %d (at most a day)", h, got, n*3600)
		}
	}
	if !slices.Contains(hours, path(t, m, "Parameters", "NoPostbackAlarmHours", "Default")) {
		t.Error("NoPostbackAlarmHours' default is not an allowed value")
	}
	for _, q := range path(t, res, "NoPostbacksAlarm", "Properties", "Metrics").([]any) {
		if ms, ok := q.(map[string]any)["MetricStat"].(map[string]any); ok {
			if diff := cmp.Diff([]any{"Hours", "NoPostbackAlarmHours", "Seconds"}, ms["Period"]); diff != "" {
				t.Errorf("NoPostbacksAlarm period (-want +got):\n%s", diff)
			}
		}
	}
}

// logKeys are the keys the functions' log lines carry: slog attributes
// written as "key", value in pkg/, plus applog's own.
func logKeys(t *testing.T) map[string]bool {
	t.Helper()
	keys := map[string]bool{"level": true, "message": true, "timestamp": true, "requestId": true, "version": true}
	attr := regexp.MustCompile(`(?:With|Context)\(([^\n]*)`)
	key := regexp.MustCompile(`"([a-zA-Z]+)", `)
	filepath.WalkDir("pkg", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, _ := os.ReadFile(p)
		for _, line := range attr.FindAllStringSubmatch(string(b), -1) {
			for _, k := range key.FindAllStringSubmatch(line[1], -1) {
				keys[k[1]] = true
			}
		}
		return nil
	})
	return keys
}

func TestTemplateSavedQueries(t *testing.T) {
	m := raw(t)
	keys := logKeys(t)
	for _, k := range []string{"id", "trackingId", "code", "err"} {
		if !keys[k] {
			t.Fatalf("no log line in pkg/ carries %q (found %v): the test reads the code wrongly", k, keys)
		}
	}
	for name, want := range map[string]string{
		"WhyNotDeliveredQuery":  `filter id = "REPLACE-WITH-THE-ID"`,
		"FailuresLastHourQuery": `filter level = "WARN" or level = "ERROR"`,
	} {
		t.Run(name, func(t *testing.T) {
			p := path(t, m, "Resources", name, "Properties").(map[string]any)
			if typ := path(t, m, "Resources", name, "Type"); typ != "AWS::Logs::QueryDefinition" {
				t.Fatalf("type %v", typ)
			}
			if diff := cmp.Diff([]any{"SendMmsLogGroup", "PostbackLogGroup", "ReceiptCheckLogGroup"}, p["LogGroupNames"]); diff != "" {
				t.Errorf("log groups (-want +got):\n%s", diff)
			}
			q := p["QueryString"].(string)
			if !strings.Contains(q, want) {
				t.Errorf("query lacks %q:\n%s", want, q)
			}
			if !strings.HasPrefix(p["Name"].(string), "mmsgate/${AWS::StackName}/") {
				t.Errorf("Name %v: want it under mmsgate/<stack>/ (the console's folder)", p["Name"])
			}
			// Every field the query reads is one the code writes
			// (@-fields are CloudWatch's own).
			fields := regexp.MustCompile(`(?m)^fields (.*)$`).FindStringSubmatch(q)
			if fields == nil {
				t.Fatalf("query has no fields line:\n%s", q)
			}
			for _, f := range strings.Split(fields[1], ",") {
				if f = strings.TrimSpace(f); !strings.HasPrefix(f, "@") && !keys[f] {
					t.Errorf("query reads field %q, which no log line has", f)
				}
			}
		})
	}
}

func TestTemplateApplicationPolicy(t *testing.T) {
	m := raw(t)
	doc := path(t, m, "Resources", "ApplicationPolicy", "Properties", "PolicyDocument").(map[string]any)
	if typ := path(t, m, "Resources", "ApplicationPolicy", "Type"); typ != "AWS::IAM::ManagedPolicy" {
		t.Fatalf("ApplicationPolicy type %v", typ)
	}
	got := map[string][]string{} // resource → actions
	for _, s := range doc["Statement"].([]any) {
		sm := s.(map[string]any)
		if sm["Effect"] != "Allow" || sm["NotAction"] != nil || sm["NotResource"] != nil || sm["Condition"] != nil {
			t.Errorf("statement %v: want a plain Allow", sm)
		}
		for _, r := range strs(sm["Resource"]) {
			got[r] = append(got[r], strs(sm["Action"])...)
		}
	}
	for r := range got {
		slices.Sort(got[r])
	}
	want := map[string][]string{
		"SendQueue.Arn":           {"sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"},
		"BulkSendQueue.Arn":       {"sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"},
		"DeliveryEventsQueue.Arn": {"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ReceiveMessage"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ApplicationPolicy grants (-want +got): send and read events, nothing else:\n%s", diff)
	}
	out := path(t, m, "Outputs").(map[string]any)
	for k, v := range map[string]any{"SendQueueArn": "SendQueue.Arn", "DeliveryEventsQueueArn": "DeliveryEventsQueue.Arn", "ApplicationPolicyArn": "ApplicationPolicy"} {
		if got := path(t, out, k, "Value"); got != v {
			t.Errorf("output %s = %v, want %v", k, got, v)
		}
	}
}

// TestTemplateFirstDeployTraps: no default FROM unless asked for on
// purpose, and a deploy whose alarms notify nobody says so.
func TestTemplateFirstDeployTraps(t *testing.T) {
	m := raw(t)
	p := path(t, m, "Parameters", "SkycoreDefaultFrom").(map[string]any)
	if _, ok := p["Default"]; ok {
		t.Error("SkycoreDefaultFrom has a default: a deploy must say what FROM is (or '-')")
	}
	for value, ok := range map[string]bool{"60856": true, "-": true, "": false, "6085a": false, "--": false} {
		if got := paramError(p, value) == ""; got != ok {
			t.Errorf("SkycoreDefaultFrom=%q allowed = %v, want %v", value, got, ok)
		}
	}
	if d, _ := p["ConstraintDescription"].(string); !strings.Contains(d, `"-"`) {
		t.Errorf("ConstraintDescription %q: tell the deployer about \"-\"", d)
	}
	env := path(t, m, "Resources", "SendMmsFunction", "Properties", "Environment", "Variables", "SKYCORE_DEFAULT_FROM")
	if diff := cmp.Diff([]any{"NoDefaultFrom", "", "SkycoreDefaultFrom"}, env); diff != "" {
		t.Errorf(`SKYCORE_DEFAULT_FROM: want "" for "-" (-want +got):\n%s`, diff)
	}
	if diff := cmp.Diff([]any{"SkycoreDefaultFrom", "-"}, path(t, m, "Conditions", "NoDefaultFrom")); diff != "" {
		t.Errorf("NoDefaultFrom (-want +got):\n%s", diff)
	}

	if diff := cmp.Diff([]any{"HasAlarmAction"}, path(t, m, "Conditions", "NoAlarmAction")); diff != "" {
		t.Errorf("NoAlarmAction (-want +got):\n%s", diff)
	}
	o := path(t, m, "Outputs", "AlarmsHaveNoAction").(map[string]any)
	if o["Condition"] != "NoAlarmAction" || !strings.Contains(o["Value"].(string), "notify nobody") {
		t.Errorf("AlarmsHaveNoAction = %v", o)
	}
}

// TestWorkflowProdApproval: prod waits for a GitHub environment approval
// unless the repository says otherwise on purpose; the region is one
// workflow variable.
func TestWorkflowProdApproval(t *testing.T) {
	b, err := os.ReadFile(".github/workflows/deploy.yml")
	if err != nil {
		t.Fatal(err)
	}
	var w map[string]any
	if err := yaml.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	prod := path(t, w, "jobs", "deploy-prod").(map[string]any)
	perms := prod["permissions"].(map[string]any)
	if diff := cmp.Diff(map[string]any{"id-token": "write", "contents": "read", "actions": "read"}, perms); diff != "" {
		t.Errorf("deploy-prod permissions (-want +got):\n%s", diff)
	}
	first := prod["steps"].([]any)[0].(map[string]any)
	run, _ := first["run"].(string)
	if !strings.Contains(run, "required_reviewers") || !strings.Contains(run, "exit 1") || !strings.Contains(run, `"$WITHOUT_APPROVAL" = true`) {
		t.Errorf("deploy-prod's first step must refuse a prod without required reviewers:\n%s", run)
	}
	if env := first["env"].(map[string]any); env["WITHOUT_APPROVAL"] != "${{ vars.PROD_DEPLOY_WITHOUT_APPROVAL }}" {
		t.Errorf("the escape hatch is %v, want the repository variable PROD_DEPLOY_WITHOUT_APPROVAL", env["WITHOUT_APPROVAL"])
	}
	if strings.Count(string(b), "us-east-1") != 1 {
		t.Errorf("deploy.yml names the region %d times, want once (env AWS_REGION)", strings.Count(string(b), "us-east-1"))
	}
}

// TestTemplateEventBus: with EventBusName set, each function that
// publishes delivery events may put them on that bus, and only on it.
func TestTemplateEventBus(t *testing.T) {
	m := raw(t)
	p := path(t, m, "Parameters", "EventBusName").(map[string]any)
	if p["Default"] != "" {
		t.Errorf("EventBusName default %v, want empty (off)", p["Default"])
	}
	for value, ok := range map[string]bool{"": true, "mmsgate-events": true, "default": true, "arn:aws:events:x": false, "a b": false} {
		if got := paramError(p, value) == ""; got != ok {
			t.Errorf("EventBusName=%q allowed = %v, want %v", value, got, ok)
		}
	}
	const bus = "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}"
	for _, fn := range functionNames {
		var found int
		for _, pol := range path(t, m, "Resources", fn, "Properties", "Policies").([]any) {
			cond, ok := pol.([]any) // !If [cond, then, else] after stripTags
			if !ok || len(cond) != 3 || cond[0] != "HasEventBus" {
				continue
			}
			found++
			want := map[string]any{"Statement": []any{map[string]any{"Sid": "EventBus", "Effect": "Allow", "Action": "events:PutEvents", "Resource": bus}}}
			if diff := cmp.Diff(want, cond[1]); diff != "" {
				t.Errorf("%s EventBus statement (-want +got):\n%s", fn, diff)
			}
			if cond[2] != "AWS::NoValue" {
				t.Errorf("%s: without a bus, %v instead of nothing", fn, cond[2])
			}
		}
		if found != 1 {
			t.Errorf("%s has %d EventBus statements, want 1", fn, found)
		}
	}
	o := path(t, m, "Outputs", "EventBusArn").(map[string]any)
	if o["Condition"] != "HasEventBus" || o["Value"] != bus {
		t.Errorf("EventBusArn output = %v", o)
	}
}

// TestMakefileAsksBeforeInstalling: outside CI, `make test` installs no
// Debian package (its client tests skip, named in one line), and the
// targets that run the system build only what they run.
func TestMakefileAsksBeforeInstalling(t *testing.T) {
	b, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	prereqs := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([a-z-]+):(.*)$`).FindAllStringSubmatch(string(b), -1) {
		prereqs[m[1]] = m[2]
	}
	if p := prereqs["test"]; !strings.Contains(p, "$(if $(filter true,$(CI)),clients)") || strings.Contains(strings.ReplaceAll(p, "$(if $(filter true,$(CI)),clients)", ""), "clients") {
		t.Errorf("test: %q; want clients only when CI=true", p)
	}
	if !regexp.MustCompile(`(?m)^test:.*\n\t@\$\(CLIENTS_CHECK\) \|\| echo "make test: skipping the client tests .*make clients`).Match(b) {
		t.Error("make test does not say in one line which client tests skip and how to enable them")
	}
	for _, target := range []string{"run", "dev", "stand-ins", "test"} {
		if p := prereqs[target]; strings.Contains(p, "tools") || strings.Contains(p, "STATICCHECK") {
			t.Errorf("%s: %q builds the linters it never runs", target, p)
		}
	}
}
