package rehearsal

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Statement is one IAM policy statement with its values resolved.
type Statement struct {
	Role, Policy, Sid string
	Effect            string
	Actions           []string
	Resources         []string
	Condition         map[string]map[string][]string
	Managed           bool // from an AWS managed policy
}

// The AWS managed policies the transform attaches, as AWS publishes them
// (only their statements that reach services the functions call).
var managed = map[string][]Statement{
	"arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole": {{Effect: "Allow",
		Actions: []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}, Resources: []string{"*"}}},
	"arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": {{Effect: "Allow",
		Actions: []string{"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}, Resources: []string{"*"}}},
	"arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": {{Effect: "Allow",
		Actions: []string{"xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"}, Resources: []string{"*"}}},
	"arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole": {{Effect: "Allow",
		Actions: []string{"ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses", "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}, Resources: []string{"*"}}},
}

// EvaluatedConditionKeys are the condition keys the check evaluates; a
// statement with any other key is reported, and treated as not matching
// (an Allow then grants nothing, a Deny denies nothing).
var EvaluatedConditionKeys = []string{"dynamodb:LeadingKeys", "aws:PrincipalArn"}

func strs(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	return nil
}

func parseStatements(role, policy string, doc any) []Statement {
	m, _ := doc.(map[string]any)
	var list []any
	switch st := m["Statement"].(type) {
	case []any:
		list = st
	case map[string]any:
		list = []any{st}
	}
	var out []Statement
	for _, e := range list {
		s, _ := e.(map[string]any)
		st := Statement{Role: role, Policy: policy, Sid: str(s, "Sid"), Effect: str(s, "Effect"),
			Actions: strs(s["Action"]), Resources: strs(s["Resource"]), Condition: map[string]map[string][]string{}}
		if c, ok := s["Condition"].(map[string]any); ok {
			for op, kv := range c {
				st.Condition[op] = map[string][]string{}
				for k, v := range kv.(map[string]any) {
					st.Condition[op][k] = strs(v)
				}
			}
		}
		out = append(out, st)
	}
	return out
}

// roleStatements resolves the role's statements with the stack's real ARNs.
func (d *Deployment) roleStatements(logicalRole string) ([]Statement, error) {
	res := d.Full.Resources[logicalRole]
	if res == nil {
		return nil, fmt.Errorf("no role %s in the template", logicalRole)
	}
	p, err := props(d.resolver(), res)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", logicalRole, err)
	}
	var out []Statement
	pols, _ := p["Policies"].([]any)
	for _, pol := range pols {
		pm := pol.(map[string]any)
		out = append(out, parseStatements(logicalRole, str(pm, "PolicyName"), pm["PolicyDocument"])...)
	}
	for _, arn := range strs(p["ManagedPolicyArns"]) {
		ms, ok := managed[arn]
		if !ok {
			return nil, fmt.Errorf("%s: managed policy %s is unknown to the check", logicalRole, arn)
		}
		for _, s := range ms {
			s.Role, s.Policy, s.Managed = logicalRole, arn, true
			out = append(out, s)
		}
	}
	return out, nil
}

func wild(pattern, s string) bool {
	ok, _ := path.Match(strings.ReplaceAll(pattern, "/", "\x00"), strings.ReplaceAll(s, "/", "\x00"))
	return ok || pattern == "*"
}

func matchAny(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if fold {
			p, s = strings.ToLower(p), strings.ToLower(s)
		}
		if wild(p, s) {
			return true
		}
	}
	return false
}

// condition evaluates a statement's conditions for a call; unknown lists
// the keys it cannot evaluate.
func condition(st Statement, c Call, principal string) (ok bool, unknown []string) {
	ok = true
	for op, kv := range st.Condition {
		for k, vals := range kv {
			switch {
			case k == "dynamodb:LeadingKeys" && op == "ForAllValues:StringLike":
				ok = ok && (c.Key == "" || matchAny(vals, c.Key, false))
			case k == "aws:PrincipalArn" && (op == "ArnNotEquals" || op == "ArnNotLike"):
				ok = ok && !matchAny(vals, principal, false)
			case k == "aws:PrincipalArn" && (op == "ArnEquals" || op == "ArnLike"):
				ok = ok && matchAny(vals, principal, false)
			default:
				unknown = append(unknown, op+" "+k)
				ok = false
			}
		}
	}
	return ok, unknown
}

// Verdict is the role check of one run.
type Verdict struct {
	Outside      []string // calls no statement allows (or one denies), with the reason
	Unused       []string // inline grants no call used
	NotEvaluated []string // condition keys met and not evaluated
}

// checkRoles checks every recorded call against the calling function's
// role, and sends to a queue against the queue's policy (a Deny there wins).
func (d *Deployment) checkRoles(ctx context.Context, calls map[string][]Call) (Verdict, error) {
	var v Verdict
	notEval := map[string]bool{}
	queuePolicies := map[string][]Statement{}
	for fn, cs := range calls {
		role := fn + "Role"
		sts, err := d.roleStatements(role)
		if err != nil {
			return v, err
		}
		principal, _ := d.attr(role, "Arn")
		used := map[int]bool{}
		for _, c := range dedupe(cs) {
			allowed, denied := false, ""
			for i, st := range sts {
				if !matchAny(st.Actions, c.Action, true) || !matchAny(st.Resources, c.Resource, false) {
					continue
				}
				ok, unk := condition(st, c, principal)
				for _, u := range unk {
					notEval[u] = true
				}
				if !ok {
					continue
				}
				if st.Effect == "Deny" {
					denied = st.Policy + " " + st.Sid
				} else {
					allowed = true
					used[i] = true
				}
			}
			if strings.HasPrefix(c.Action, "sqs:") {
				qp, err := d.queuePolicy(ctx, c.Resource, queuePolicies)
				if err != nil {
					return v, err
				}
				for _, st := range qp {
					if st.Effect != "Deny" || !matchAny(st.Actions, c.Action, true) || !matchAny(st.Resources, c.Resource, false) {
						continue
					}
					ok, unk := condition(st, c, principal)
					for _, u := range unk {
						notEval[u] = true
					}
					if ok {
						denied = "queue policy " + st.Sid
					}
				}
			}
			switch {
			case denied != "":
				v.Outside = append(v.Outside, fmt.Sprintf("%s: %s on %s denied by %s", fn, c.Action, c.Resource, denied))
			case !allowed:
				reason := fmt.Sprintf("%s: %s on %s not allowed by %s", fn, c.Action, c.Resource, role)
				if c.Key != "" {
					reason += " (key " + c.Key + ")"
				}
				v.Outside = append(v.Outside, reason)
			}
		}
		for i, st := range sts {
			if !st.Managed && st.Effect == "Allow" && !used[i] {
				v.Unused = append(v.Unused, fmt.Sprintf("%s %s%s: %s on %s", role, st.Policy, sidOf(st), strings.Join(st.Actions, ","), strings.Join(st.Resources, ",")))
			}
		}
	}
	for k := range notEval {
		v.NotEvaluated = append(v.NotEvaluated, k)
	}
	sort.Strings(v.Outside)
	sort.Strings(v.Unused)
	sort.Strings(v.NotEvaluated)
	return v, nil
}

func sidOf(st Statement) string {
	if st.Sid == "" {
		return ""
	}
	return " " + st.Sid
}

func dedupe(cs []Call) []Call {
	seen := map[Call]bool{}
	var out []Call
	for _, c := range cs {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// queuePolicy reads a queue's resource policy as the stack set it.
func (d *Deployment) queuePolicy(ctx context.Context, arn string, cache map[string][]Statement) ([]Statement, error) {
	if st, ok := cache[arn]; ok {
		return st, nil
	}
	name := arn[strings.LastIndexByte(arn, ':')+1:]
	url := ""
	for l, id := range d.ids {
		if r := d.Full.Resources[l]; r != nil && r.Type == "AWS::SQS::Queue" && queueName(id) == name {
			url = id
		}
	}
	if url == "" {
		return nil, fmt.Errorf("no queue %s in the stack", name)
	}
	out, err := d.c.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNamePolicy}})
	if err != nil {
		return nil, err
	}
	var doc any
	if p := out.Attributes["Policy"]; p != "" {
		if err := json.Unmarshal([]byte(p), &doc); err != nil {
			return nil, fmt.Errorf("policy of %s: %w", name, err)
		}
	}
	cache[arn] = parseStatements("", "queue policy", doc)
	return cache[arn], nil
}
