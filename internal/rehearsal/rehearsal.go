// Package rehearsal deploys template.yaml as `sam deploy` would, on moto's
// CloudFormation instead of AWS, and runs mmsgate end to end on what the
// stack created (make deploy-rehearsal): the functions built by the
// Makefile's build-<LogicalId> targets, the SAM transform by the pinned
// aws-sam-translator, the stack created, updated and deleted by the engine,
// the resources moto has no model for created by the rehearsal through
// their services' APIs, each function run under the Lambda emulator with
// the environment the created function carries, and every AWS call a
// function makes checked against its role.
package rehearsal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/moto"
	"github.com/mmsgate/mmsgate/pkg/delivery"
)

// Options of Run.
type Options struct {
	Template   string // template.yaml (default: the repository's)
	Samconfig  string // samconfig.toml
	ConfigEnv  string // its environment (default "default")
	Python     string // with the pinned aws-sam-translator (default python3)
	Emulator   string // aws-lambda-rie
	Bootstraps map[string]string
	Artifacts  map[string]string // the built Lambda bootstraps (linux/arm64), by logical id
	Logs       io.Writer         // the functions' log lines (nil: discarded)
	Docs       string            // docs/deploy.md: its deployer permissions must cover every resource type ("": not checked)
	Progress   func(string)      // progress lines
	// Update is the parameters changed by the update (default: the
	// rehearsal's own set).
	Update map[string]string
	// Quick stops after the first end-to-end run and its role check (the
	// broken-template tests).
	Quick   bool
	motoURL string
}

func (o Options) progress(format string, a ...any) {
	if o.Progress != nil {
		o.Progress(fmt.Sprintf(format, a...))
	}
}

// Result is what the rehearsal did.
type Result struct {
	ByEngine, ByUs []string
	Checked        []string // checked, created by neither (notCreated)
	Outputs        map[string]string
	Verdict        Verdict
	Statuses       []string
	// The EventBusName bus ("": none), the events read from its rule's
	// queue (each as on the delivery-events queue) and the functions whose
	// PutEvents on it were seen and checked against their roles.
	Bus                   string
	BusEvents, BusCallers int
}

// Summary is the one line the rehearsal ends with. Resources created by
// neither (notCreated) are counted in it, never left out silently.
func (r Result) Summary() string {
	checked := ""
	if len(r.Checked) > 0 {
		checked = fmt.Sprintf(", %d checked but not created", len(r.Checked))
	}
	bus := ""
	if r.Bus != "" {
		bus = fmt.Sprintf(", event bus ok (%s: %d events through a rule to SQS, each as on the queue, source %s, detail-type its kind; PutEvents of %d functions in their roles)",
			r.Bus, r.BusEvents, delivery.BusSource, r.BusCallers)
	}
	return fmt.Sprintf("rehearsal: stack CREATE_COMPLETE (%d by the engine, %d by the rehearsal%s), end to end ok%s, update ok, delete ok, calls outside role %d, unused grants %d",
		len(r.ByEngine), len(r.ByUs), checked, bus, len(r.Verdict.Outside), len(r.Verdict.Unused))
}

// Build builds the functions as `sam build` does (make build-<LogicalId>,
// linux/arm64, into .aws-sam/build/<LogicalId>) and, for this machine's
// emulator, the same targets for its own architecture. The functions are
// the template's AWS::Serverless::Function resources: one added to the
// template is built (and run) without a change here.
func Build(ctx context.Context, root string) (artifacts, local map[string]string, err error) {
	fns, err := templateFunctions(filepath.Join(root, "template.yaml"))
	if err != nil {
		return nil, nil, err
	}
	artifacts, local = map[string]string{}, map[string]string{}
	for _, fn := range fns {
		art := filepath.Join(root, ".aws-sam", "build", fn)
		loc := filepath.Join(root, ".run", "rehearsal", fn)
		// The same target both times; only GOARCH differs (LAMBDA_ENV).
		for _, b := range []struct{ dir, env string }{{art, ""}, {loc, "LAMBDA_ENV=CGO_ENABLED=0 GOOS=linux GOARCH=" + runtime.GOARCH}} {
			args := []string{"--no-print-directory", "build-" + fn, "ARTIFACTS_DIR=" + b.dir}
			if b.env != "" {
				args = append(args, b.env)
			}
			cmd := exec.CommandContext(ctx, "make", args...)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				return nil, nil, fmt.Errorf("make build-%s: %v\n%s", fn, err, out)
			}
		}
		artifacts[fn] = filepath.Join(art, "bootstrap")
		local[fn] = filepath.Join(loc, "bootstrap")
	}
	return artifacts, local, nil
}

// serverlessFunction is a resource header of template.yaml's layout (two
// spaces, the logical id, then its Type): read without a YAML library,
// which the tags (!Ref, !If) would need taught.
var serverlessFunction = regexp.MustCompile(`(?m)^  ([A-Za-z0-9]+):\n    Type: AWS::Serverless::Function\s*$`)

// templateFunctions lists the template's SAM functions, sorted.
func templateFunctions(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var fns []string
	for _, m := range serverlessFunction.FindAllStringSubmatch(string(b), -1) {
		fns = append(fns, m[1])
	}
	if len(fns) == 0 {
		return nil, fmt.Errorf("%s: no AWS::Serverless::Function", path)
	}
	sort.Strings(fns)
	return fns, nil
}

// Deploy transforms the template and creates the stack on a fresh moto;
// the caller closes the server.
func Deploy(ctx context.Context, o *Options, params map[string]string) (*Deployment, *moto.Server, error) {
	cfg, err := ReadDeployConfig(o.Samconfig, o.ConfigEnv)
	if err != nil {
		return nil, nil, err
	}
	bucket := "aws-sam-cli-managed-default-rehearsal"
	_, full, err := Transform(o.Python, o.Template, bucket)
	if err != nil {
		return nil, nil, err
	}
	srv, err := moto.Start(ctx, moto.Options{Log: os.Getenv("REHEARSAL_MOTO_LOG")})
	if err != nil {
		return nil, nil, err
	}
	o.motoURL = srv.URL
	c, err := newClients(ctx, srv.URL)
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	p := maps.Clone(cfg.Params)
	maps.Copy(p, params)
	d := &Deployment{c: c, Name: cfg.StackName, Full: full, Params: p, Bucket: bucket, ids: map[string]string{}, log: o.progress}
	if bus := p["EventBusName"]; bus != "" {
		// The bus is the account's, made before the deploy that names it
		// (docs/deploy.md); an application subscribes with a rule.
		if d.BusQueueURL, err = localenv.CreateBus(ctx, c.sqs, c.eb, bus); err != nil {
			srv.Close()
			return nil, nil, err
		}
	}
	if err := d.upload(ctx, o.Artifacts); err != nil {
		srv.Close()
		return nil, nil, err
	}
	if err := d.Create(ctx); err != nil {
		srv.Close()
		return d, nil, err
	}
	return d, srv, nil
}

// Run is the whole rehearsal.
func Run(ctx context.Context, o Options) (Result, error) {
	var res Result
	if o.ConfigEnv == "" {
		o.ConfigEnv = "default"
	}
	dir, err := os.MkdirTemp("", "rehearsal")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	const apiKey = "rehearsal-api-key"
	sky, err := StartSkycore(dir, apiKey)
	if err != nil {
		return res, err
	}
	defer sky.Close()
	// The deployer's own value for Skycore's URL: the simulator.
	// EventBusName set: every event also on a bus (docs/deploy.md), which
	// Deploy creates with an application's rule on it.
	d, srv, err := Deploy(ctx, &o, map[string]string{"SkycoreApiUrl": sky.URL, "EventBusName": rehearsalBus})
	if err != nil {
		return res, fmt.Errorf("create: %w", err)
	}
	defer srv.Close()
	res.ByEngine, res.ByUs, res.Checked = d.ByEngine, d.ByUs, d.Checked
	if o.Docs != "" {
		if err := CheckDeployerPermissions(o.Docs, d.Full); err != nil {
			return res, err
		}
	}
	if err := d.checkFunctions(ctx); err != nil {
		return res, fmt.Errorf("create: %w", err)
	}
	res.Outputs = d.Outputs
	o.progress("stack %s CREATE_COMPLETE: %d resources by the engine, %d by the rehearsal (%s)", d.Name, len(d.ByEngine), len(d.ByUs), strings.Join(d.ByUs, ", "))
	for _, c := range d.Checked {
		o.progress("checked but not created: %s (%s: %s)", c, d.Full.Resources[c].Type, notCreated[d.Full.Resources[c].Type])
	}
	// What the deployer does after the first deploy (docs/deploy.md): the
	// API key into the created secret.
	if _, err := d.c.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(d.Outputs["ApiKeySecretArn"]),
		SecretString: aws.String(`{"api_key":"` + apiKey + `"}`)}); err != nil {
		return res, fmt.Errorf("put the API key: %w", err)
	}
	run1, err := d.e2e(ctx, o, sky, "create", false)
	if err != nil {
		return res, d.withRoleCheck(ctx, fmt.Errorf("after create: %w", err), run1.Calls)
	}
	o.progress("end to end after create: %v, bulk lane %v, swept by the schedule %v, %d events on the bus", run1.Statuses, run1.Bulk, run1.Scheduled, run1.BusEvents)
	if o.Quick {
		return res, d.withRoleCheck(ctx, nil, run1.Calls)
	}
	update := o.Update
	if update == nil {
		update = map[string]string{"LogLevel": "INFO", "SendBatchSize": "5", "SendBatchingWindowSeconds": "0", "ReceiptWindow": "3s", "PostbackTokenRevision": "2"}
	}
	p := maps.Clone(d.Params)
	maps.Copy(p, update)
	if err := d.Update(ctx, p); err != nil {
		return res, fmt.Errorf("update: %w", err)
	}
	if err := d.checkUpdated(ctx, update); err != nil {
		return res, fmt.Errorf("update: %w", err)
	}
	o.progress("stack UPDATE_COMPLETE with %v", update)
	run2, err := d.e2e(ctx, o, sky, "update", true)
	if err != nil {
		return res, d.withRoleCheck(ctx, fmt.Errorf("after update: %w", err), run2.Calls)
	}
	o.progress("end to end after update: %v, bulk lane %v, swept by the schedule %v, receipt check fired: no receipt %v, %d events on the bus", run2.Statuses, run2.Bulk, run2.Scheduled, run2.NoReceipt, run2.BusEvents)
	res.Statuses = append(run1.Statuses, run2.Statuses...)
	calls := run1.Calls
	for fn, cs := range run2.Calls {
		calls[fn] = append(calls[fn], cs...)
	}
	d.addMappingCalls(calls)
	if res.Verdict, err = d.checkRoles(ctx, calls); err != nil {
		return res, err
	}
	if bus := d.Params["EventBusName"]; bus != "" {
		fns, err := d.busFunctions(ctx, bus)
		if err != nil {
			return res, err
		}
		if res.BusCallers, err = busCallers(calls, fns, busARN(bus)); err != nil {
			return res, fmt.Errorf("event bus: %w", err)
		}
		res.Bus, res.BusEvents = bus, run1.BusEvents+run2.BusEvents
		o.progress("event bus %s: %d events through the rule, PutEvents by %s", bus, res.BusEvents, strings.Join(fns, ", "))
	}
	for _, u := range res.Verdict.Unused {
		o.progress("unused grant: %s", u)
	}
	if len(res.Verdict.NotEvaluated) > 0 {
		o.progress("condition keys not evaluated: %s", strings.Join(res.Verdict.NotEvaluated, ", "))
	}
	if len(res.Verdict.Outside) > 0 {
		return res, fmt.Errorf("calls outside their role:\n  %s", strings.Join(res.Verdict.Outside, "\n  "))
	}
	if err := d.Delete(ctx); err != nil {
		return res, fmt.Errorf("delete: %w", err)
	}
	if err := d.checkDeleted(ctx); err != nil {
		return res, fmt.Errorf("delete: %w", err)
	}
	o.progress("stack DELETE_COMPLETE; retained: %s", strings.Join(d.retained(), ", "))
	if err := staticEgress(ctx, o, sky.URL); err != nil {
		return res, fmt.Errorf("StaticEgressIp=true: %w", err)
	}
	return res, nil
}

// staticEgress creates the stack with the static egress option on (on a
// fresh engine: the first stack's retained secrets keep their names) and
// checks the sender sits in the private subnets and the IP is an output.
func staticEgress(ctx context.Context, o Options, skycoreURL string) error {
	d, srv, err := Deploy(ctx, &o, map[string]string{"SkycoreApiUrl": skycoreURL, "StaticEgressIp": "true"})
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	defer srv.Close()
	if err := d.checkFunctions(ctx); err != nil {
		return err
	}
	ip := d.Outputs["EgressIp"]
	if net.ParseIP(ip) == nil {
		return fmt.Errorf("output EgressIp %q is not an IP", ip)
	}
	out, err := d.c.lam.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(d.ids["SendMmsFunction"])})
	if err != nil {
		return err
	}
	want := []string{d.ids["EgressPrivateSubnetA"], d.ids["EgressPrivateSubnetB"]}
	if out.VpcConfig == nil || !slices.Equal(out.VpcConfig.SubnetIds, want) || !slices.Equal(out.VpcConfig.SecurityGroupIds, []string{d.ids["EgressSecurityGroup"]}) {
		return fmt.Errorf("SendMmsFunction's VpcConfig is %+v, want subnets %v and group %s", out.VpcConfig, want, d.ids["EgressSecurityGroup"])
	}
	o.progress("StaticEgressIp=true: stack CREATE_COMPLETE (%d by the engine, %d by the rehearsal), sender in %v, EgressIp %s", len(d.ByEngine), len(d.ByUs), want, ip)
	// Not deleted: moto 5.2.1's DeleteStack fails on this stack with
	// DependencyViolation ("The vpc … has dependencies"), deleting the VPC
	// before what is in it; CloudFormation deletes in reverse dependency
	// order. The engine goes away with its server.
	return nil
}

// withRoleCheck adds to err the calls outside their roles: the likelier
// cause of a failed run, which moto (no IAM enforcement) does not refuse.
func (d *Deployment) withRoleCheck(ctx context.Context, err error, calls map[string][]Call) error {
	if calls == nil {
		return err
	}
	d.addMappingCalls(calls)
	v, cerr := d.checkRoles(ctx, calls)
	if cerr != nil {
		return errors.Join(err, cerr)
	}
	if len(v.Outside) > 0 {
		return errors.Join(err, fmt.Errorf("calls outside their role:\n  %s", strings.Join(v.Outside, "\n  ")))
	}
	return err
}
