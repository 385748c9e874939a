package rehearsal

import (
	"os"
	"path/filepath"
	"regexp"
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
