package rehearsal

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestTranslatorPinned: the Makefile installs the translator version the
// rehearsal requires.
func TestTranslatorPinned(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^SAMTRANSLATOR_VERSION\s*:=\s*(\S+)`).FindSubmatch(mk)
	if m == nil || string(m[1]) != TranslatorVersion {
		t.Fatalf("Makefile SAMTRANSLATOR_VERSION = %q, rehearsal.TranslatorVersion = %s", m, TranslatorVersion)
	}
}

func TestConditionsAndRoleCheck(t *testing.T) {
	tpl := &Template{
		Parameters: map[string]map[string]any{"Key": {"Default": ""}},
		Conditions: map[string]any{"HasKey": map[string]any{"Fn::Not": []any{map[string]any{"Fn::Equals": []any{map[string]any{"Ref": "Key"}, ""}}}}},
		Resources: map[string]*Resource{"R": {Type: "AWS::IAM::Role", Properties: map[string]any{"Policies": []any{
			map[string]any{"PolicyName": "a"},
			map[string]any{"Fn::If": []any{"HasKey", map[string]any{"PolicyName": "kms"}, map[string]any{"Ref": "AWS::NoValue"}}},
		}}}},
	}
	for key, want := range map[string]int{"": 1, "arn:aws:kms:us-east-1:123456789012:key/x": 2} {
		rt, err := ResolveConditions(tpl, map[string]string{"Key": key}, "s")
		if err != nil {
			t.Fatal(err)
		}
		if got := len(rt.Resources["R"].Properties["Policies"].([]any)); got != want {
			t.Errorf("Key %q: %d policies, want %d", key, got, want)
		}
	}
	st := Statement{Effect: "Allow", Actions: []string{"dynamodb:GetItem"}, Resources: []string{"arn:aws:dynamodb:us-east-1:1:table/t"},
		Condition: map[string]map[string][]string{"ForAllValues:StringLike": {"dynamodb:LeadingKeys": {"msg#*", "trk#*"}}}}
	for key, want := range map[string]bool{"msg#a": true, "trk#b": true, "sup#c": false} {
		ok, unk := condition(st, Call{Key: key}, "")
		if ok != want || len(unk) != 0 {
			t.Errorf("key %s: allowed %v (%v), want %v", key, ok, unk, want)
		}
	}
	if !matchAny([]string{"sqs:SendMessage*"}, "sqs:SendMessageBatch", true) || matchAny([]string{"sqs:SendMessage*"}, "sqs:ReceiveMessage", true) {
		t.Error("action wildcards")
	}
	if _, unk := condition(Statement{Condition: map[string]map[string][]string{"StringEquals": {"kms:ViaService": {"x"}}}}, Call{}, ""); len(unk) != 1 {
		t.Error("kms:ViaService is not evaluated and must be reported")
	}
}

// TestDeployerPermissionsCoverTheTemplate: docs/deploy.md's table covers
// every resource type a template has, and a missing row is named.
func TestDeployerPermissionsCoverTheTemplate(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	doc := filepath.Join(root, "docs", "deploy.md")
	tpl := &Template{Resources: map[string]*Resource{"Q": {Type: "AWS::SQS::Queue"}, "N": {Type: "AWS::EC2::NatGateway"}}}
	if err := CheckDeployerPermissions(doc, tpl); err != nil {
		t.Fatal(err)
	}
	tpl.Resources["K"] = &Resource{Type: "AWS::KMS::Key"}
	if err := CheckDeployerPermissions(doc, tpl); err == nil || !regexp.MustCompile(`AWS::KMS::Key$`).MatchString(err.Error()) {
		t.Fatalf("a type the table lacks: %v", err)
	}
}

// TestResolver evaluates what the transformed template uses with real ids.
func TestResolver(t *testing.T) {
	tpl := &Template{Parameters: map[string]map[string]any{"Env": {"Default": "dev"}},
		Resources: map[string]*Resource{"Q": {Type: "AWS::SQS::Queue"}, "S": {Type: "AWS::SecretsManager::Secret"}}}
	ids := map[string]string{"Q": "https://sqs.us-east-1.amazonaws.com/123456789012/q-1", "S": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf"}
	d := &Deployment{Full: tpl, ids: ids}
	r := &Resolver{T: tpl, Params: map[string]string{}, StackName: "st", Ref: func(l string) (string, bool) { v, ok := ids[l]; return v, ok }, Attr: d.attr,
		Secret: func(id, key string) (string, error) { return "tok-" + id[len(id)-6:] + "-" + key, nil }}
	for _, c := range []struct {
		in   any
		want string
	}{
		{map[string]any{"Fn::GetAtt": []any{"Q", "Arn"}}, "arn:aws:sqs:us-east-1:123456789012:q-1"},
		{map[string]any{"Fn::Sub": "${AWS::StackName}-${Env}-${Q.QueueName}"}, "st-dev-q-1"},
		{map[string]any{"Fn::Sub": []any{"arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${n}", map[string]any{"n": map[string]any{"Fn::GetAtt": []any{"Q", "QueueName"}}}}},
			"arn:aws:sqs:us-east-1:123456789012:q-1"},
		{map[string]any{"Fn::Sub": []any{"ANY /p/{{resolve:secretsmanager:${S}:SecretString:postback_token}}", map[string]any{"S": map[string]any{"Ref": "S"}}}}, "ANY /p/tok-AbCdEf-postback_token"},
	} {
		got, err := r.Eval(c.in)
		if err != nil || got != c.want {
			t.Errorf("Eval(%v) = %v, %v; want %s", c.in, got, err, c.want)
		}
	}
	if _, err := r.Eval(map[string]any{"Ref": "Missing"}); err == nil {
		t.Error("a Ref to a resource not created must fail")
	}
	got := Substitute(map[string]any{"a": map[string]any{"Ref": "S"}, "b": "x-${S}-y", "c": map[string]any{"Ref": "Q"}}, map[string]string{"S": "arn:s"})
	want := map[string]any{"a": "arn:s", "b": "x-arn:s-y", "c": map[string]any{"Ref": "Q"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Substitute = %v, want %v", got, want)
	}
}

func TestFindInMapAndUnknownFunctions(t *testing.T) {
	r := &Resolver{T: &Template{Parameters: map[string]map[string]any{"Hours": {"Default": "2"}},
		Mappings: map[string]map[string]map[string]any{"Hours": {"1": {"Seconds": 3600.0}, "2": {"Seconds": 7200.0}}}}, Params: map[string]string{}}
	v, err := r.Eval(map[string]any{"Fn::FindInMap": []any{"Hours", map[string]any{"Ref": "Hours"}, "Seconds"}})
	if err != nil || fmt.Sprint(v) != "7200" {
		t.Errorf("FindInMap: %v, %v; want 7200", v, err)
	}
	if _, err := r.Eval(map[string]any{"Fn::FindInMap": []any{"Hours", "3", "Seconds"}}); err == nil {
		t.Error("FindInMap of a missing key passed")
	}
	if _, err := r.Eval(map[string]any{"Period": map[string]any{"Fn::Cidr": []any{"10.0.0.0/16", 2, 8}}}); err == nil || !strings.Contains(err.Error(), "Fn::Cidr") {
		t.Errorf("an unknown function must be named: %v", err)
	}
}

func TestCallOf(t *testing.T) {
	for _, c := range []struct {
		op, body         string
		action, resource string
	}{
		{"Query", `{"TableName":"t","IndexName":"due"}`, "dynamodb:Query", "arn:aws:dynamodb:" + Region + ":" + Account + ":table/t/index/due"},
		{"GetItem", `{"TableName":"t","Key":{"pk":{"S":"msg#a"}}}`, "dynamodb:GetItem", "arn:aws:dynamodb:" + Region + ":" + Account + ":table/t"},
		{"PutEvents", `{"Entries":[{"EventBusName":"apps"}]}`, "events:PutEvents", "arn:aws:events:" + Region + ":" + Account + ":event-bus/apps"},
	} {
		got := callOf("F", c.op, []byte(c.body))
		if got.Action != c.action || got.Resource != c.resource {
			t.Errorf("%s %s: %s on %s, want %s on %s", c.op, c.body, got.Action, got.Resource, c.action, c.resource)
		}
	}
}
