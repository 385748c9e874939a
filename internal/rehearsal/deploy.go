package rehearsal

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/pkg/sdkhttp"
)

// clients reach one moto_server.
type clients struct {
	cfg aws.Config
	cf  *cloudformation.Client
	lam *lambda.Client
	api *apigatewayv2.Client
	sqs *sqs.Client
	sm  *secretsmanager.Client
	ddb *dynamodb.Client
	s3  *s3.Client
	eb  *eventbridge.Client
}

func newClients(ctx context.Context, url string) (*clients, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(Region),
		config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "deployer", SecretAccessKey: "deployer", Source: "rehearsal"}, nil
		})))
	if err != nil {
		return nil, err
	}
	cfg.HTTPClient = sdkhttp.Wrap(cfg.HTTPClient) // without the race that loses answers (pkg/sdkhttp)
	cfg.BaseEndpoint = aws.String(url)
	return &clients{cfg: cfg, cf: cloudformation.NewFromConfig(cfg), lam: lambda.NewFromConfig(cfg),
		api: apigatewayv2.NewFromConfig(cfg), sqs: sqs.NewFromConfig(cfg),
		sm: secretsmanager.NewFromConfig(cfg), ddb: dynamodb.NewFromConfig(cfg),
		s3: s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }), eb: eventbridge.NewFromConfig(cfg)}, nil
}

// Deployment is one stack as the engine and the rehearsal made it.
type Deployment struct {
	c        *clients
	Name     string
	Full     *Template // the transformed template
	Params   map[string]string
	Bucket   string
	ids      map[string]string // logical id → physical id
	ByEngine []string          // logical ids the engine created
	ByUs     []string          // logical ids the rehearsal created
	Checked  []string          // logical ids checked but created by neither (notCreated)
	Outputs  map[string]string
	// BusQueueURL is the target queue of an application's rule on the
	// EventBusName bus ("": no bus).
	BusQueueURL string
	log         func(format string, a ...any)
}

// The types moto 5.2.1's CloudFormation has no model for: it lists such a
// resource in the stack and creates nothing (a difference from AWS). The
// rehearsal creates each through the service's own API, from the
// properties the transformed template gives it. Secrets and the API have
// no dependencies and are referenced by resources the engine creates (the
// functions' environment, the invoke permission), so they are created
// first and their Ref given to the engine as a value.
var (
	preTypes  = map[string]bool{"AWS::SecretsManager::Secret": true, "AWS::ApiGatewayV2::Api": true}
	postTypes = map[string]bool{"AWS::ApiGatewayV2::Integration": true, "AWS::ApiGatewayV2::Route": true,
		"AWS::ApiGatewayV2::Stage": true, "AWS::CloudWatch::Alarm": true, "AWS::SQS::QueuePolicy": true}
)

// notCreated are the types neither moto's CloudFormation nor its service
// can create: moto 5.2.1's CloudWatch Logs serves no PutQueryDefinition
// (nor Describe/DeleteQueryDefinitions), so a saved Logs Insights query
// cannot exist on this engine. The rehearsal checks its properties
// against what the stack created (checkOnly) and counts it as checked but
// not created, in the summary line: never silently.
var notCreated = map[string]string{"AWS::Logs::QueryDefinition": "moto 5.2.1 serves no logs:PutQueryDefinition"}

// upload puts each function's zip where the transformed CodeUri says, as
// `sam package` does: bootstrap at the root of the zip.
func (d *Deployment) upload(ctx context.Context, artifacts map[string]string) error {
	if _, err := d.c.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(d.Bucket)}); err != nil {
		var owned interface{ ErrorCode() string }
		if !errors.As(err, &owned) || !strings.Contains(owned.ErrorCode(), "BucketAlreadyOwnedByYou") {
			return fmt.Errorf("create bucket %s: %w", d.Bucket, err)
		}
	}
	for name, path := range artifacts {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var buf bytes.Buffer
		z := zip.NewWriter(&buf)
		w, _ := z.CreateHeader(&zip.FileHeader{Name: "bootstrap", Method: zip.Deflate, ExternalAttrs: 0o755 << 16})
		w.Write(b)
		z.Close()
		if _, err := d.c.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(name + ".zip"), Body: bytes.NewReader(buf.Bytes())}); err != nil {
			return fmt.Errorf("upload %s: %w", name, err)
		}
	}
	return nil
}

func (d *Deployment) resolver() *Resolver {
	return &Resolver{T: d.Full, Params: d.Params, StackName: d.Name,
		Ref:  func(l string) (string, bool) { v, ok := d.ids[l]; return v, ok },
		Attr: d.attr,
		Secret: func(id, key string) (string, error) {
			out, err := d.c.sm.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
			if err != nil {
				return "", err
			}
			var m map[string]string
			if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &m); err != nil {
				return "", err
			}
			v, ok := m[key]
			if !ok {
				return "", fmt.Errorf("no %s in the secret", key)
			}
			return v, nil
		}}
}

// attr is Fn::GetAtt on a created resource, from its physical id.
func (d *Deployment) attr(logical, attr string) (string, bool) {
	id, ok := d.ids[logical]
	r := d.Full.Resources[logical]
	if !ok || r == nil {
		return "", false
	}
	switch r.Type + "." + attr {
	case "AWS::SQS::Queue.Arn":
		return "arn:aws:sqs:" + Region + ":" + Account + ":" + queueName(id), true
	case "AWS::SQS::Queue.QueueName":
		return queueName(id), true
	case "AWS::SQS::Queue.QueueUrl":
		return id, true
	case "AWS::IAM::Role.Arn":
		return "arn:aws:iam::" + Account + ":role/" + id, true
	case "AWS::Lambda::Function.Arn":
		return "arn:aws:lambda:" + Region + ":" + Account + ":function:" + id, true
	case "AWS::DynamoDB::Table.Arn":
		return "arn:aws:dynamodb:" + Region + ":" + Account + ":table/" + id, true
	case "AWS::Logs::LogGroup.Arn":
		return "arn:aws:logs:" + Region + ":" + Account + ":log-group:" + id + ":*", true
	case "AWS::EC2::EIP.PublicIp", "AWS::EC2::EIP.AllocationId":
		v, ok := d.ids[logical+"."+attr]
		return v, ok
	}
	return "", false
}

func queueName(url string) string { return url[strings.LastIndexByte(url, '/')+1:] }

// engineTemplate is what moto's engine gets: conditions decided, the
// rehearsal's pre-created resources left out and their Refs given as values.
func (d *Deployment) engineTemplate() (string, error) {
	rt, err := ResolveConditions(d.Full, d.Params, d.Name)
	if err != nil {
		return "", err
	}
	pre := map[string]string{}
	for name, r := range rt.Resources {
		if preTypes[r.Type] {
			pre[name] = d.ids[name]
			delete(rt.Resources, name)
		}
	}
	raw, _ := json.Marshal(rt)
	var m map[string]any
	json.Unmarshal(raw, &m)
	delete(m, "Metadata")
	for name, res := range m["Resources"].(map[string]any) {
		res := res.(map[string]any)
		for k, v := range res {
			if v == nil || v == "" {
				delete(res, k)
			}
		}
		// moto 5.2.1 keeps a resource on delete only for "Retain" and
		// deletes one marked RetainExceptOnCreate, which AWS keeps once
		// its create completed: the same as Retain for a delete.
		for _, k := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
			if res[k] == "RetainExceptOnCreate" {
				res[k] = "Retain"
			}
		}
		m["Resources"].(map[string]any)[name] = res
	}
	// Outputs whose condition is false are left out, as CloudFormation does.
	outs := map[string]any{}
	r := &Resolver{T: d.Full, Params: d.Params, StackName: d.Name}
	for k, o := range d.Full.Outputs {
		if o.Condition != "" {
			if on, _ := r.Condition(o.Condition); !on {
				continue
			}
		}
		v, err := resolveIfOnly(r, o.Value)
		if err != nil {
			return "", err
		}
		outs[k] = map[string]any{"Value": v}
	}
	m["Outputs"] = outs
	b, err := json.Marshal(Substitute(m, pre))
	return string(b), err
}

// resolveIfOnly decides the Fn::If of v (outputs, for moto).
func resolveIfOnly(r *Resolver, v any) (any, error) {
	t := &Template{Conditions: r.T.Conditions, Parameters: r.T.Parameters, Resources: map[string]*Resource{"x": {Properties: map[string]any{"v": v}}}}
	rt, err := ResolveConditions(t, r.Params, r.StackName)
	if err != nil {
		return nil, err
	}
	return rt.Resources["x"].Properties["v"], nil
}

func (d *Deployment) cfParams() []cftypes.Parameter {
	var out []cftypes.Parameter
	keys := make([]string, 0, len(d.Params))
	for k := range d.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, cftypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(d.Params[k])})
	}
	return out
}

// wait polls the stack until it leaves IN_PROGRESS and returns its status.
func (d *Deployment) wait(ctx context.Context, what string) (cftypes.Stack, error) {
	start, last := time.Now(), time.Now()
	for {
		out, err := d.c.cf.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(d.Name)})
		if err != nil {
			return cftypes.Stack{}, err
		}
		s := out.Stacks[0]
		if !strings.HasSuffix(string(s.StackStatus), "IN_PROGRESS") {
			return s, nil
		}
		if time.Since(last) > 10*time.Second {
			d.log("%s: %s after %s", what, s.StackStatus, time.Since(start).Round(time.Second))
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return s, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Create creates the stack: the pre-created resources, the engine's
// create, then the resources the engine skips; it fails when a resource is
// created by neither.
func (d *Deployment) Create(ctx context.Context) error {
	r := d.resolver()
	rt, err := ResolveConditions(d.Full, d.Params, d.Name)
	if err != nil {
		return err
	}
	for _, name := range sortedNames(rt) {
		if res := rt.Resources[name]; preTypes[res.Type] {
			if err := d.createOwn(ctx, r, name, res); err != nil {
				return fmt.Errorf("%s (%s): %w", name, res.Type, err)
			}
		}
	}
	body, err := d.engineTemplate()
	if err != nil {
		return err
	}
	if _, err := d.c.cf.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(d.Name), TemplateBody: aws.String(body),
		Parameters: d.cfParams(), Capabilities: []cftypes.Capability{cftypes.CapabilityCapabilityIam}}); err != nil {
		return fmt.Errorf("create stack: %w", err)
	}
	s, err := d.wait(ctx, "create")
	if err != nil {
		return err
	}
	if s.StackStatus != cftypes.StackStatusCreateComplete {
		return fmt.Errorf("stack %s: %s (%s)", d.Name, s.StackStatus, aws.ToString(s.StackStatusReason))
	}
	if err := d.readEngineResources(ctx, rt); err != nil {
		return err
	}
	for _, name := range sortedNames(rt) {
		res := rt.Resources[name]
		if _, done := d.ids[name]; done || !postTypes[res.Type] {
			continue
		}
		if err := d.createOwn(ctx, r, name, res); err != nil {
			return fmt.Errorf("%s (%s): %w", name, res.Type, err)
		}
	}
	d.Checked = nil
	for _, name := range sortedNames(rt) {
		if res := rt.Resources[name]; notCreated[res.Type] != "" {
			if err := d.checkOnly(r, name, res); err != nil {
				return fmt.Errorf("%s (%s): %w", name, res.Type, err)
			}
			d.Checked = append(d.Checked, name)
		}
	}
	var missing []string
	for _, name := range sortedNames(rt) {
		if _, ok := d.ids[name]; !ok && notCreated[rt.Resources[name].Type] == "" {
			missing = append(missing, name+" ("+rt.Resources[name].Type+")")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("created by neither the engine nor the rehearsal: %s", strings.Join(missing, ", "))
	}
	return d.readOutputs(ctx, s)
}

// checkOnly checks a resource of a notCreated type against what the stack
// created: a saved query's name and text are set and each of its log
// groups is one the stack created.
func (d *Deployment) checkOnly(r *Resolver, name string, res *Resource) error {
	p, err := props(r, res)
	if err != nil {
		return err
	}
	switch res.Type {
	case "AWS::Logs::QueryDefinition":
		if str(p, "Name") == "" || strings.TrimSpace(str(p, "QueryString")) == "" {
			return fmt.Errorf("no Name or QueryString")
		}
		groups := map[string]bool{}
		for l, id := range d.ids {
			if x := d.Full.Resources[l]; x != nil && x.Type == "AWS::Logs::LogGroup" {
				groups[id] = true
			}
		}
		names, _ := p["LogGroupNames"].([]any)
		if len(names) == 0 {
			return fmt.Errorf("no LogGroupNames")
		}
		for _, g := range names {
			if !groups[fmt.Sprint(g)] {
				return fmt.Errorf("log group %v is not one the stack created", g)
			}
		}
		return nil
	}
	return fmt.Errorf("no check for %s", res.Type)
}

// readEngineResources notes what the engine created (a resource it skipped
// comes back without its logical id).
func (d *Deployment) readEngineResources(ctx context.Context, rt *Template) error {
	out, err := d.c.cf.DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String(d.Name)})
	if err != nil {
		return err
	}
	d.ByEngine = nil
	for _, sr := range out.StackResources {
		l := aws.ToString(sr.LogicalResourceId)
		if l == "" {
			continue
		}
		if rt.Resources[l] == nil {
			return fmt.Errorf("engine created %s, which the template does not have", l)
		}
		id := aws.ToString(sr.PhysicalResourceId)
		if id == "" {
			id = l // AWS::Lambda::Permission: moto returns none
		}
		d.ids[l] = id
		d.ByEngine = append(d.ByEngine, l)
	}
	sort.Strings(d.ByEngine)
	return nil
}

// readOutputs requires every output of the template. moto leaves an
// output unresolved or out when it names a resource it skipped (a
// difference from AWS): those are evaluated here with the real ids.
func (d *Deployment) readOutputs(ctx context.Context, s cftypes.Stack) error {
	d.Outputs = map[string]string{}
	for _, o := range s.Outputs {
		d.Outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	r := d.resolver()
	for k, o := range d.Full.Outputs {
		if o.Condition != "" {
			if on, _ := r.Condition(o.Condition); !on {
				continue
			}
		}
		v, err := r.Eval(o.Value)
		if err != nil {
			return fmt.Errorf("output %s: %w", k, err)
		}
		want := fmt.Sprint(v)
		got, ok := d.Outputs[k]
		if ok && got != want && !strings.Contains(got, "${") {
			return fmt.Errorf("output %s: the engine says %q, the template %q", k, got, want)
		}
		d.Outputs[k] = want
		if want == "" && k != "AlarmTopic" {
			return fmt.Errorf("output %s is empty", k)
		}
	}
	return nil
}

func sortedNames(t *Template) []string {
	var out []string
	for k := range t.Resources {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// props evaluates a resource's properties with the stack's real values.
func props(r *Resolver, res *Resource) (map[string]any, error) {
	v, err := r.Eval(map[string]any(res.Properties))
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

func str(m map[string]any, k string) string {
	if v, ok := m[k]; ok && v != nil {
		return fmt.Sprint(v)
	}
	return ""
}

func num(m map[string]any, k string) *float64 {
	v, ok := m[k]
	if !ok {
		return nil
	}
	f, err := strconv.ParseFloat(fmt.Sprint(v), 64)
	if err != nil {
		return nil
	}
	return &f
}

// createOwn creates (or, when it exists, updates) one resource the engine
// has no model for, through its service's API.
func (d *Deployment) createOwn(ctx context.Context, r *Resolver, name string, res *Resource) error {
	p, err := props(r, res)
	if err != nil {
		return err
	}
	_, exists := d.ids[name]
	switch res.Type {
	case "AWS::SecretsManager::Secret":
		return d.createSecret(ctx, name, p)
	case "AWS::ApiGatewayV2::Api":
		if exists {
			return nil
		}
		out, err := d.c.api.CreateApi(ctx, &apigatewayv2.CreateApiInput{Name: aws.String(str(p, "Name")), Description: aws.String(str(p, "Description")),
			ProtocolType: "HTTP"})
		if err != nil {
			return err
		}
		d.ids[name] = aws.ToString(out.ApiId)
	case "AWS::ApiGatewayV2::Integration":
		in := &apigatewayv2.CreateIntegrationInput{ApiId: aws.String(str(p, "ApiId")), IntegrationType: "AWS_PROXY",
			IntegrationUri: aws.String(str(p, "IntegrationUri")), PayloadFormatVersion: aws.String(str(p, "PayloadFormatVersion"))}
		if exists {
			_, err = d.c.api.UpdateIntegration(ctx, &apigatewayv2.UpdateIntegrationInput{ApiId: in.ApiId, IntegrationId: aws.String(d.ids[name]),
				IntegrationUri: in.IntegrationUri, PayloadFormatVersion: in.PayloadFormatVersion})
			return err
		}
		out, err := d.c.api.CreateIntegration(ctx, in)
		if err != nil {
			return err
		}
		d.ids[name] = aws.ToString(out.IntegrationId)
	case "AWS::ApiGatewayV2::Route":
		if exists {
			_, err = d.c.api.UpdateRoute(ctx, &apigatewayv2.UpdateRouteInput{ApiId: aws.String(str(p, "ApiId")), RouteId: aws.String(d.ids[name]),
				RouteKey: aws.String(str(p, "RouteKey")), Target: aws.String(str(p, "Target")), OperationName: aws.String(str(p, "OperationName"))})
			return err
		}
		out, err := d.c.api.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: aws.String(str(p, "ApiId")), RouteKey: aws.String(str(p, "RouteKey")),
			Target: aws.String(str(p, "Target")), OperationName: aws.String(str(p, "OperationName"))})
		if err != nil {
			return err
		}
		d.ids[name] = aws.ToString(out.RouteId)
	case "AWS::ApiGatewayV2::Stage":
		if exists {
			// moto 5.2.1 has no UpdateStage (AWS has): delete and create it again.
			if _, err := d.c.api.DeleteStage(ctx, &apigatewayv2.DeleteStageInput{ApiId: aws.String(str(p, "ApiId")), StageName: aws.String(d.ids[name])}); err != nil {
				return err
			}
		}
		_, err := d.c.api.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: aws.String(str(p, "ApiId")), StageName: aws.String(str(p, "StageName")),
			AutoDeploy: aws.Bool(str(p, "AutoDeploy") == "true")})
		if err != nil {
			return err
		}
		d.ids[name] = str(p, "StageName")
	case "AWS::CloudWatch::Alarm":
		return d.putAlarm(ctx, name, p)
	case "AWS::SQS::QueuePolicy":
		doc, _ := json.Marshal(p["PolicyDocument"])
		qs, _ := p["Queues"].([]any)
		for _, q := range qs {
			if _, err := d.c.sqs.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(fmt.Sprint(q)),
				Attributes: map[string]string{string(sqstypes.QueueAttributeNamePolicy): string(doc)}}); err != nil {
				return err
			}
		}
		d.ids[name] = name
	default:
		return fmt.Errorf("no way to create %s", res.Type)
	}
	if !exists {
		d.ByUs = append(d.ByUs, name)
	}
	return nil
}

func (d *Deployment) createSecret(ctx context.Context, name string, p map[string]any) error {
	if _, exists := d.ids[name]; exists {
		return nil // GenerateSecretString is not regenerated on an update
	}
	value := str(p, "SecretString")
	if g, ok := p["GenerateSecretString"].(map[string]any); ok {
		var length int64 = 32
		if f := num(g, "PasswordLength"); f != nil {
			length = int64(*f)
		}
		pw, err := d.c.sm.GetRandomPassword(ctx, &secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(length),
			ExcludePunctuation: aws.Bool(str(g, "ExcludePunctuation") == "true")})
		if err != nil {
			return err
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(str(g, "SecretStringTemplate")), &m); err != nil {
			return fmt.Errorf("SecretStringTemplate: %w", err)
		}
		m[str(g, "GenerateStringKey")] = aws.ToString(pw.RandomPassword)
		b, _ := json.Marshal(m)
		value = string(b)
	}
	out, err := d.c.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(str(p, "Name")),
		Description: aws.String(str(p, "Description")), SecretString: aws.String(value)})
	if err != nil {
		return err
	}
	d.ids[name] = aws.ToString(out.ARN)
	d.ByUs = append(d.ByUs, name)
	return nil
}

func (d *Deployment) putAlarm(ctx context.Context, name string, p map[string]any) error {
	alarm := d.ids[name]
	if alarm == "" {
		alarm = d.Name + "-" + name + "-REHEARSAL" // CloudFormation names it <stack>-<logical id>-<suffix>
	}
	q := url.Values{"AlarmName": {alarm}}
	for _, k := range []string{"AlarmDescription", "Namespace", "MetricName", "Statistic", "Period", "EvaluationPeriods",
		"DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData"} {
		if v := str(p, k); v != "" {
			q.Set(k, v)
		}
	}
	if dims, ok := p["Dimensions"].([]any); ok {
		for i, dm := range dims {
			dm := dm.(map[string]any)
			if str(dm, "Value") == "" {
				return fmt.Errorf("dimension %s has no value", str(dm, "Name"))
			}
			q.Set(fmt.Sprintf("Dimensions.member.%d.Name", i+1), str(dm, "Name"))
			q.Set(fmt.Sprintf("Dimensions.member.%d.Value", i+1), str(dm, "Value"))
		}
	}
	if err := alarmMetrics(q, p); err != nil {
		return err
	}
	if acts, ok := p["AlarmActions"].([]any); ok {
		for i, a := range acts {
			q.Set(fmt.Sprintf("AlarmActions.member.%d", i+1), fmt.Sprint(a))
		}
	}
	if err := d.cloudWatch(ctx, "PutMetricAlarm", q); err != nil {
		return err
	}
	if d.ids[name] == "" {
		d.ids[name] = alarm
		d.ByUs = append(d.ByUs, name)
	}
	return nil
}

// alarmMetrics adds an alarm's metric math (Metrics) to its
// PutMetricAlarm query.
func alarmMetrics(q url.Values, p map[string]any) error {
	ms, _ := p["Metrics"].([]any)
	for i, m := range ms {
		m, _ := m.(map[string]any)
		pre := fmt.Sprintf("Metrics.member.%d.", i+1)
		for _, k := range []string{"Id", "Expression", "Label", "ReturnData", "Period"} {
			if v := str(m, k); v != "" {
				q.Set(pre+k, v)
			}
		}
		ms, _ := m["MetricStat"].(map[string]any)
		if str(m, "Expression") == "" && ms == nil {
			return fmt.Errorf("metric %s has neither Expression nor MetricStat", str(m, "Id"))
		}
		if ms == nil {
			continue
		}
		for _, k := range []string{"Period", "Stat", "Unit"} {
			if v := str(ms, k); v != "" {
				q.Set(pre+"MetricStat."+k, v)
			}
		}
		mt, _ := ms["Metric"].(map[string]any)
		q.Set(pre+"MetricStat.Metric.Namespace", str(mt, "Namespace"))
		q.Set(pre+"MetricStat.Metric.MetricName", str(mt, "MetricName"))
		dims, _ := mt["Dimensions"].([]any)
		for j, dm := range dims {
			dm, _ := dm.(map[string]any)
			if str(dm, "Value") == "" {
				return fmt.Errorf("metric %s: dimension %s has no value", str(m, "Id"), str(dm, "Name"))
			}
			q.Set(fmt.Sprintf("%sMetricStat.Metric.Dimensions.member.%d.Name", pre, j+1), str(dm, "Name"))
			q.Set(fmt.Sprintf("%sMetricStat.Metric.Dimensions.member.%d.Value", pre, j+1), str(dm, "Value"))
		}
	}
	return nil
}

// Update updates the stack with new parameters: the engine's update, then
// the rehearsal's resources updated from their new properties.
func (d *Deployment) Update(ctx context.Context, params map[string]string) error {
	d.Params = params
	body, err := d.engineTemplate()
	if err != nil {
		return err
	}
	if _, err := d.c.cf.UpdateStack(ctx, &cloudformation.UpdateStackInput{StackName: aws.String(d.Name), TemplateBody: aws.String(body),
		Parameters: d.cfParams(), Capabilities: []cftypes.Capability{cftypes.CapabilityCapabilityIam}}); err != nil {
		return fmt.Errorf("update stack: %w", err)
	}
	s, err := d.wait(ctx, "update")
	if err != nil {
		return err
	}
	if s.StackStatus != cftypes.StackStatusUpdateComplete {
		return fmt.Errorf("stack %s: %s (%s)", d.Name, s.StackStatus, aws.ToString(s.StackStatusReason))
	}
	rt, err := ResolveConditions(d.Full, d.Params, d.Name)
	if err != nil {
		return err
	}
	if err := d.readEngineResources(ctx, rt); err != nil {
		return err
	}
	r := d.resolver()
	for _, name := range sortedNames(rt) {
		if res := rt.Resources[name]; postTypes[res.Type] || preTypes[res.Type] {
			if err := d.createOwn(ctx, r, name, res); err != nil {
				return fmt.Errorf("update %s (%s): %w", name, res.Type, err)
			}
		}
	}
	return d.readOutputs(ctx, s)
}

// Delete deletes the stack; the rehearsal deletes its own resources unless
// their DeletionPolicy keeps them, as CloudFormation would.
func (d *Deployment) Delete(ctx context.Context) error {
	if _, err := d.c.cf.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String(d.Name)}); err != nil {
		return err
	}
	s, err := d.wait(ctx, "delete")
	if err != nil && !strings.Contains(err.Error(), "does not exist") {
		return err
	}
	if err == nil && s.StackStatus != cftypes.StackStatusDeleteComplete {
		return fmt.Errorf("stack %s: %s (%s)", d.Name, s.StackStatus, aws.ToString(s.StackStatusReason))
	}
	for _, name := range d.ByUs {
		res := d.Full.Resources[name]
		if keeps(res) {
			continue
		}
		id := d.ids[name]
		var err error
		switch res.Type {
		case "AWS::ApiGatewayV2::Api":
			_, err = d.c.api.DeleteApi(ctx, &apigatewayv2.DeleteApiInput{ApiId: aws.String(id)})
		case "AWS::CloudWatch::Alarm":
			err = d.cloudWatch(ctx, "DeleteAlarms", url.Values{"AlarmNames.member.1": {id}})
		case "AWS::SecretsManager::Secret":
			_, err = d.c.sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(id)})
		}
		// Integrations, routes and stages go with their API; a queue
		// policy with its queue (which is kept).
		if err != nil {
			return fmt.Errorf("delete %s: %w", name, err)
		}
	}
	return nil
}

// keeps says whether a resource's DeletionPolicy keeps it after a delete
// (RetainExceptOnCreate: kept, since the create it came from completed).
func keeps(r *Resource) bool {
	return r.DeletionPolicy == "Retain" || r.DeletionPolicy == "RetainExceptOnCreate"
}
