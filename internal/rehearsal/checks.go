package rehearsal

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// checkFunctions compares each created function's environment with what
// the template says for the current parameters, and each event source
// mapping's batch size and window.
func (d *Deployment) checkFunctions(ctx context.Context) error {
	r := d.resolver()
	rt, err := ResolveConditions(d.Full, d.Params, d.Name)
	if err != nil {
		return err
	}
	for _, name := range sortedNames(rt) {
		res := rt.Resources[name]
		switch res.Type {
		case "AWS::Lambda::Function":
			p, err := props(r, res)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			out, err := d.c.lam.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(d.ids[name])})
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			want := map[string]any{}
			if e, ok := p["Environment"].(map[string]any); ok {
				want, _ = e["Variables"].(map[string]any)
			}
			got := map[string]string{}
			if out.Environment != nil {
				got = out.Environment.Variables
			}
			for k, v := range want {
				if got[k] != fmt.Sprint(v) {
					return fmt.Errorf("%s: %s is %q, the template says %q", name, k, got[k], v)
				}
			}
			for k := range got {
				if _, ok := want[k]; !ok {
					return fmt.Errorf("%s: %s is set and not in the template", name, k)
				}
			}
		case "AWS::Lambda::EventSourceMapping":
			p, err := props(r, res)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			fn := ""
			for l, id := range d.ids {
				if id == str(p, "FunctionName") && d.Full.Resources[l].Type == "AWS::Lambda::Function" {
					fn = l
				}
			}
			batch, window, err := d.mapping(ctx, fn, str(p, "EventSourceArn"))
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if fmt.Sprint(batch) != str(p, "BatchSize") || fmt.Sprint(int(window.Seconds())) != str(p, "MaximumBatchingWindowInSeconds") {
				return fmt.Errorf("%s: batch size %d, window %s; the template says %s, %ss", name, batch, window, str(p, "BatchSize"), str(p, "MaximumBatchingWindowInSeconds"))
			}
		}
	}
	return nil
}

// checkUpdated checks the update reached the functions and mappings.
func (d *Deployment) checkUpdated(ctx context.Context, changed map[string]string) error {
	return d.checkFunctions(ctx)
}

// addMappingCalls adds what each event source mapping does with its
// function's role (Lambda polls the queue as the role): ReceiveMessage,
// DeleteMessage and GetQueueAttributes on the mapped queue.
func (d *Deployment) addMappingCalls(calls map[string][]Call) {
	for _, res := range d.Full.Resources {
		if res.Type != "AWS::Lambda::EventSourceMapping" {
			continue
		}
		fn, _ := res.Properties["FunctionName"].(map[string]any)["Ref"].(string)
		q, _ := res.Properties["EventSourceArn"].(map[string]any)["Fn::GetAtt"].([]any)
		if fn == "" || len(q) == 0 {
			continue
		}
		arn, _ := d.attr(fmt.Sprint(q[0]), "Arn")
		for _, a := range []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} {
			calls[fn] = append(calls[fn], Call{Function: fn, Action: a, Resource: arn})
		}
	}
}

// retained lists the resources whose DeletionPolicy keeps them.
func (d *Deployment) retained() []string {
	var out []string
	for l := range d.ids {
		if r := d.Full.Resources[l]; r != nil && keeps(r) {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// checkDeleted checks that the retained resources are still there and that
// the functions are gone.
func (d *Deployment) checkDeleted(ctx context.Context) error {
	var errs []string
	for l, id := range d.ids {
		r := d.Full.Resources[l]
		if r == nil {
			continue
		}
		var err error
		switch r.Type {
		case "AWS::SQS::Queue":
			_, err = d.c.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(id)})
		case "AWS::DynamoDB::Table":
			_, err = d.c.ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(id)})
		case "AWS::SecretsManager::Secret":
			var out *secretsmanager.DescribeSecretOutput
			out, err = d.c.sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
			if err == nil && out.DeletedDate != nil {
				err = fmt.Errorf("scheduled for deletion")
			}
		case "AWS::Lambda::Function":
			_, err = d.c.lam.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(id)})
			if err == nil {
				errs = append(errs, l+" outlived the stack")
			}
			continue
		default:
			continue
		}
		if keeps(r) && err != nil {
			errs = append(errs, fmt.Sprintf("%s (DeletionPolicy %s) is gone: %v", l, r.DeletionPolicy, err))
		}
		if !keeps(r) && err == nil {
			errs = append(errs, l+" outlived the stack")
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}
