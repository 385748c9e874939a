// Package devtest drives `make dev` (mmsgate-local -dev) from the outside
// with clients nobody here wrote: Debian's AWS CLI and boto3 (SQS's query
// protocol), and the Node AWS SDK v3 with sqs-consumer (JSON protocol,
// DeleteMessageBatch); with the operator's tool (a dead letter redriven
// until it is delivered) and the applications' Go client; then stops it
// with Ctrl-C and checks that no child process survives.
package devtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/mmsgate/mmsgate/client"
	"github.com/mmsgate/mmsgate/internal/loopback"
	"github.com/mmsgate/mmsgate/internal/moto"
	"github.com/mmsgate/mmsgate/pkg/sdkhttp"
	"github.com/mmsgate/mmsgate/schema"
)

// dev is a running `mmsgate-local -dev`.
type dev struct {
	cmd                   *exec.Cmd
	endpoint, send, event string
	dlq, postback, dynamo string
	out                   *lockedBuffer // stdout: the banner, then what follows
	log                   *lockedBuffer // stderr: progress and status lines
	bulk                  string        // the bulk lane's queue
	sim                   string        // the Skycore simulator's base URL
	busQueue              string        // the event bus rule's target (-event-bus)
}

func root(t *testing.T) string {
	t.Helper()
	r, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// startDev builds and starts the dev service on free ports and reads its
// banner.
func startDev(t *testing.T) *dev {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the dev service (moto, dynalite, emulators)")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the dev service's process checks read /proc")
	}
	if _, err := moto.Binary(); err != nil {
		t.Skip(err)
	}
	r := root(t)
	bin := filepath.Join(t.TempDir(), "mmsgate-local")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/mmsgate-local").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	args := []string{"-dev", "-status-every", "200ms", "-event-bus"}
	for _, f := range []string{"-sqs-port", "-dynamodb-port", "-sim-port", "-api-port"} {
		p, err := loopback.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, f, strconv.Itoa(p))
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = r
	stdout, _ := cmd.StdoutPipe()
	d := &dev{cmd: cmd, out: &lockedBuffer{}, log: &lockedBuffer{}}
	cmd.Stderr = d.log
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dev service's stderr:\n%s", d.log)
		}
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	field := func(line, label string) string {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), label); ok {
			return strings.Fields(rest)[0]
		}
		return ""
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			l := sc.Text()
			io.WriteString(d.out, l+"\n")
			for label, dst := range map[string]*string{"SQS + Secrets Manager (moto)": &d.endpoint, "send queue": &d.send,
				"delivery events queue": &d.event, "dead-letter queue": &d.dlq, "postback URL": &d.postback, "DynamoDB (dynalite)": &d.dynamo,
				"bulk send queue": &d.bulk, "Skycore simulator": &d.sim, "event bus rule's queue": &d.busQueue} {
				if v := field(l, label); v != "" && *dst == "" {
					*dst = v
				}
			}
			if strings.HasPrefix(l, "What happened to one request") {
				ready <- nil
			}
		}
		ready <- fmt.Errorf("the dev service ended before its banner:\n%s", d.out)
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("no banner after 3 minutes:\n%s", d.out)
	}
	return d
}

// sqs is an SDK client for the dev service's SQS.
func (d *dev) sqs() *sqs.Client {
	return sqs.NewFromConfig(aws.Config{Region: "us-east-1", HTTPClient: sdkhttp.Wrap(nil), Credentials: aws.CredentialsProviderFunc(
		func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local"}, nil
		})},
		func(o *sqs.Options) { o.BaseEndpoint = aws.String(d.endpoint) })
}

// attrs reads a queue's attributes (its counters).
func (d *dev) attrs(t *testing.T, url string) map[string]string {
	t.Helper()
	a, err := d.sqs().GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
	if err != nil {
		t.Fatal(err)
	}
	return a.Attributes
}

// descendants lists every process under pid.
func descendants(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			c, _ := strconv.Atoi(s)
			out = append(out, c)
			out = append(out, descendants(c)...)
		}
	}
	return out
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	// A zombie ("Z") has exited; only its parent's wait is missing.
	return err == nil && !regexp.MustCompile(`\) Z `).Match(b)
}

// buildMmsgate builds the operator's tool.
func buildMmsgate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mmsgate")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/mmsgate").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func TestDev(t *testing.T) {
	d := startDev(t)
	var wanted []string // id:event pairs the consumer must see

	t.Run("Debian aws CLI sends (query protocol)", func(t *testing.T) {
		const aws = "/usr/bin/aws"
		if _, err := os.Stat(aws); err != nil {
			t.Skip("Debian's awscli is not installed (make clients installs it where apt-get can): ", err)
		}
		cmd := exec.Command(aws, "--endpoint-url", d.endpoint, "sqs", "send-message", "--queue-url", d.send,
			"--message-body", `{"id":"cli-1","to":"17743199144","mmsId":1000,"slides":[{"slide":1,"text":"Hi"}]}`)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_DEFAULT_REGION=us-east-1")
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("MD5OfMessageBody")) {
			t.Fatalf("aws sqs send-message: %v\n%s", err, out)
		}
		wanted = append(wanted, "cli-1:accepted", "cli-1:delivered")
	})

	t.Run("SQS's own validation, through the query protocol", func(t *testing.T) {
		const aws = "/usr/bin/aws"
		if _, err := os.Stat(aws); err != nil {
			t.Skip("Debian's awscli is not installed (make clients installs it where apt-get can)")
		}
		cases := map[string]struct {
			args []string
			want string // the SQS error code in the CLI's message
		}{
			"DelaySeconds 1000":      {[]string{"send-message", "--queue-url", d.send, "--message-body", "x", "--delay-seconds", "1000"}, "InvalidParameterValue"},
			"MaxNumberOfMessages 50": {[]string{"receive-message", "--queue-url", d.send, "--max-number-of-messages", "50"}, "InvalidParameterValue"},
			"unknown queue":          {[]string{"send-message", "--queue-url", d.endpoint + "/123456789012/nope", "--message-body", "x"}, "NonExistentQueue"},
			"invalid receipt handle": {[]string{"delete-message", "--queue-url", d.send, "--receipt-handle", "nope"}, "ReceiptHandleIsInvalid"},
		}
		for name, c := range cases {
			t.Run(name, func(t *testing.T) {
				cmd := exec.Command(aws, append([]string{"--endpoint-url", d.endpoint, "sqs"}, c.args...)...)
				cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_DEFAULT_REGION=us-east-1")
				out, err := cmd.CombinedOutput()
				if err == nil || !bytes.Contains(out, []byte(c.want)) {
					t.Errorf("aws sqs %s: %v\n%s\nwant an error %s", c.args[0], err, out, c.want)
				}
			})
		}
	})

	t.Run("Debian boto3 sends a batch (query protocol)", func(t *testing.T) {
		py := "/usr/bin/python3"
		if exec.Command(py, "-c", "import boto3").Run() != nil {
			t.Skip("Debian's python3-boto3 is not installed (make clients installs it where apt-get can)")
		}
		out, err := exec.Command(py, "testdata/send_boto3.py", d.endpoint, d.send, "boto-1", "boto-2").CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte(`"sent": 2`)) {
			t.Fatalf("boto3 send_message_batch: %v\n%s", err, out)
		}
		t.Logf("%s", bytes.TrimSpace(out))
		wanted = append(wanted, "boto-1:accepted", "boto-1:delivered", "boto-2:accepted", "boto-2:delivered")
	})

	t.Run("mmsgate redrive moves a dead letter back and it completes", func(t *testing.T) {
		// A request SQS's redrive policy moved to the DLQ before any sender
		// recorded it (every receive crashed, say): no error attribute, no
		// record. Once redriven it is sent like any other.
		ctx := t.Context()
		q := d.sqs()
		const body = `{"id":"redrive-1","to":"17743199144","mmsId":1000,"slides":[{"slide":1,"text":"Hi"}]}`
		if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(d.dlq), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
		bin := buildMmsgate(t)
		mmsgate := func(args ...string) string {
			t.Helper()
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_REGION=", "AWS_PROFILE=")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("mmsgate %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			return string(out)
		}
		if out := mmsgate("--endpoint", d.endpoint, "redrive", "--dlq", d.dlq, "--to", d.send, "--dry-run"); !strings.Contains(out, "id redrive-1") {
			t.Fatalf("redrive --dry-run lists:\n%s", out)
		}
		if out := mmsgate("--endpoint", d.endpoint, "redrive", "--dlq", d.dlq, "--to", d.send); !strings.Contains(out, "moved 1 message(s)") {
			t.Fatalf("redrive:\n%s", out)
		}
		// The dev service's poller takes it from the send queue: the record
		// reaches ACCEPTED (and the events are read by sqs-consumer below).
		deadline := time.Now().Add(60 * time.Second)
		for {
			cmd := exec.Command(bin, "--endpoint", d.dynamo, "status", "redrive-1")
			cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local")
			out, _ := cmd.CombinedOutput()
			if strings.Contains(string(out), "state ACCEPTED") && strings.Contains(string(out), "N102") {
				t.Logf("%s", out)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redrive-1 not delivered 60 s after the redrive; status:\n%s", out)
			}
			time.Sleep(500 * time.Millisecond)
		}
		if c := d.attrs(t, d.dlq); c["ApproximateNumberOfMessages"] != "0" || c["ApproximateNumberOfMessagesNotVisible"] != "0" {
			t.Errorf("DLQ after the redrive: %v; want empty", c)
		}
		wanted = append(wanted, "redrive-1:accepted", "redrive-1:delivered")
	})

	t.Run("sendAt and mmsgate cancel, as the README says", func(t *testing.T) {
		// One request a few seconds ahead: mmsgate status says scheduled, then
		// it is called no earlier than its sendAt. Another an hour ahead,
		// canceled with mmsgate cancel: canceled, never called.
		ctx := t.Context()
		bin := buildMmsgate(t)
		run := func(args ...string) (string, error) {
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_REGION=", "AWS_PROFILE=",
				"AWS_ENDPOINT_URL_DYNAMODB="+d.dynamo)
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		sendAt := time.Now().Add(8 * time.Second).UTC().Truncate(time.Second)
		for id, at := range map[string]time.Time{"sched-1": sendAt, "sched-2": sendAt.Add(time.Hour)} {
			body := fmt.Sprintf(`{"id":%q,"to":"17743199144","mmsId":1000,"sendAt":%q}`, id, at.Format(time.RFC3339))
			if _, err := d.sqs().SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(d.send), MessageBody: aws.String(body)}); err != nil {
				t.Fatal(err)
			}
		}
		status := func(id string) string {
			out, _ := run("--endpoint", d.dynamo, "status", id) // exit 1 until the record exists
			return out
		}
		waitFor := func(id, want string, within time.Duration) string {
			t.Helper()
			deadline := time.Now().Add(within)
			for {
				out := status(id)
				if strings.Contains(out, want) {
					return out
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: no %q after %s; status:\n%s", id, want, within, out)
				}
				time.Sleep(300 * time.Millisecond)
			}
		}
		before := waitFor("sched-1", "scheduled: ", 5*time.Second)
		if time.Now().Before(sendAt) && strings.Contains(before, "attempt 1") {
			t.Errorf("sched-1 called before its sendAt %s:\n%s", sendAt, before)
		}
		t.Logf("before its sendAt:\n%s", before)
		waitFor("sched-2", "state SCHEDULED", 5*time.Second)
		if out, err := run("--endpoint", d.endpoint, "cancel", "--queue", d.send, "sched-2"); err != nil || !strings.Contains(out, "sched-2") {
			t.Errorf("mmsgate cancel: %v\n%s", err, out)
		}
		t.Logf("after the cancel:\n%s", waitFor("sched-2", "state CANCELED", 30*time.Second))
		after := waitFor("sched-1", "state ACCEPTED", 60*time.Second)
		t.Logf("after its sendAt:\n%s", after)
		m := regexp.MustCompile(`(\d\d:\d\d:\d\d)\s+attempt 1`).FindStringSubmatch(after)
		if m == nil {
			t.Fatalf("no first attempt in:\n%s", after)
		}
		if m[1] < sendAt.Format("15:04:05") {
			t.Errorf("sched-1's first call at %s, before its sendAt %s", m[1], sendAt.Format(time.TimeOnly))
		}
		wanted = append(wanted, "sched-1:scheduled", "sched-1:accepted", "sched-2:scheduled", "sched-2:canceled")
	})

	t.Run("the bulk lane is served too", func(t *testing.T) {
		if d.bulk == "" {
			t.Fatalf("the banner names no bulk send queue:\n%s", d.out)
		}
		const body = `{"id":"bulk-1","to":"17743199144","mmsId":1000}`
		if _, err := d.sqs().SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(d.bulk), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
		wanted = append(wanted, "bulk-1:accepted", "bulk-1:delivered")
	})

	t.Run("the banner's postback example is answered 200 and delivers", func(t *testing.T) {
		// The banner's own commands, run as printed: send to a number the
		// simulator posts nothing for, read its tracking id, post N102.
		for _, tool := range []string{"aws", "jq", "curl"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("no %s on PATH", tool)
			}
		}
		block := d.out.String()
		i := strings.Index(block, "Post a delivery report yourself")
		if i < 0 {
			t.Fatalf("banner has no postback example:\n%s", block)
		}
		block = block[i:]
		block = block[:strings.Index(block, "\n\n")]
		var cmds []string // the indented command lines, continuations joined
		for _, l := range strings.Split(block, "\n") {
			if !strings.HasPrefix(l, "  ") {
				continue
			}
			l = strings.TrimSpace(l)
			if n := len(cmds); n > 0 && strings.HasSuffix(cmds[n-1], "\\") {
				cmds[n-1] = strings.TrimSuffix(cmds[n-1], "\\") + l
				continue
			}
			cmds = append(cmds, l)
		}
		if len(cmds) != 3 {
			t.Fatalf("want send, tracking id, curl; got %q", cmds)
		}
		sh := func(script string) string {
			t.Helper()
			cmd := exec.Command("bash", "-c", script)
			cmd.Dir = root(t)
			cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_DEFAULT_REGION=us-east-1", "AWS_REGION=us-east-1")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", script, err, out)
			}
			return string(out)
		}
		sh(cmds[0])
		deadline := time.Now().Add(60 * time.Second)
		for {
			// The tracking id, once the sender has recorded the acceptance.
			_, tid, _ := strings.Cut(sh(cmds[1]+`; echo "tid=$tid"`), "tid=")
			if tid = strings.TrimSpace(tid); tid != "" && tid != "null" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("hello-2 has no tracking id 60 s after it was sent")
			}
			time.Sleep(500 * time.Millisecond)
		}
		if out := sh(cmds[1] + "; " + cmds[2]); !strings.Contains(out, "HTTP/1.1 200") {
			t.Fatalf("the banner's curl:\n%s", out)
		}
		wanted = append(wanted, "hello-2:accepted", "hello-2:delivered")
	})

	t.Run("sqs-consumer reads the delivery events", func(t *testing.T) {
		if len(wanted) == 0 {
			t.Skip("nothing was sent")
		}
		ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "node", append([]string{"testdata/consume.mjs", d.endpoint, d.event}, wanted...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("sqs-consumer: %v\n%s\n%s", err, out, stderr.Bytes())
		}
		s, err := schema.Load(schema.DeliveryEvent)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for line := range bytes.Lines(out) {
			var got struct {
				Attr string          `json:"attr"`
				Body json.RawMessage `json:"body"`
			}
			if err := json.Unmarshal(line, &got); err != nil {
				t.Fatalf("consumer line %q: %v", line, err)
			}
			var ev struct{ Event string }
			json.Unmarshal(got.Body, &ev)
			if got.Attr != ev.Event {
				t.Errorf("attribute event = %q, body event = %q", got.Attr, ev.Event)
			}
			if errs := s.Validate(got.Body); len(errs) > 0 {
				t.Errorf("event %s breaks the schema: %q", got.Body, errs)
			}
			n++
		}
		t.Logf("sqs-consumer read %d events", n)
		// It deleted what it handled (DeleteMessageBatch): nothing is left
		// visible or in flight.
		a := d.attrs(t, d.event)
		if v, h := a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"]; h != "0" {
			t.Errorf("after sqs-consumer: %s visible, %s in flight; want none in flight (deleted)", v, h)
		}
	})

	t.Run("the event bus's rule delivers the same events to its queue", func(t *testing.T) {
		if d.busQueue == "" {
			t.Fatalf("the banner names no event bus rule's queue:\n%s", d.out)
		}
		if len(wanted) == 0 {
			t.Skip("nothing was sent")
		}
		seen := map[string]bool{}
		missing := func() []string {
			var m []string
			for _, w := range wanted {
				if !seen[w] {
					m = append(m, w)
				}
			}
			return m
		}
		for deadline := time.Now().Add(30 * time.Second); len(missing()) > 0 && time.Now().Before(deadline); {
			r, err := d.sqs().ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(d.busQueue), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range r.Messages {
				var env struct {
					Source     string `json:"source"`
					DetailType string `json:"detail-type"`
					Detail     struct{ ID, Event string }
				}
				if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &env); err != nil {
					t.Fatalf("%s: %v", aws.ToString(m.Body), err)
				}
				if env.Source != "mmsgate" || env.DetailType != env.Detail.Event {
					t.Errorf("source %q, detail-type %q for a %s event", env.Source, env.DetailType, env.Detail.Event)
				}
				seen[env.Detail.ID+":"+env.Detail.Event] = true
			}
		}
		if m := missing(); len(m) > 0 {
			t.Errorf("not on the bus: %v (saw %v)", m, seen)
		}
	})

	t.Run("the Go client sends and reads the events (client package)", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		api := d.sqs()
		p := client.Policy{DefaultFrom: "60856"}
		c := client.New(api, d.send, p)
		req := func(id, to string) client.Request {
			return client.Request{ID: id, To: to, MMSID: "1000", Slides: []client.Slide{{Slide: 1, Text: "Hi"}}}
		}
		if err := c.Send(ctx, req("goclient-1", "17743199144")); err != nil {
			t.Fatal(err)
		}
		// An invalid request fails here, in the application, not in the sender.
		err := c.SendBatch(ctx, []client.Request{req("goclient-2", "17743199144"), req("goclient-bad", "12")})
		var be *client.BatchError
		if !errors.As(err, &be) || !slices.Equal(be.IDs(), []string{"goclient-bad"}) {
			t.Fatalf("SendBatch = %v; want goclient-bad refused alone", err)
		}
		want := map[string]bool{"goclient-1:accepted": true, "goclient-1:delivered": true, "goclient-2:accepted": true, "goclient-2:delivered": true}
		r := &client.Receiver{API: api, QueueURL: d.event, Wait: time.Second}
		for len(want) > 0 && ctx.Err() == nil {
			if _, err := r.Poll(ctx, func(_ context.Context, e client.Event) error {
				delete(want, e.ID+":"+e.Event)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		if len(want) > 0 {
			t.Errorf("events never read: %v", want)
		}
	})

	t.Run("a STOP through the simulator: inbound and optout events, the next request refused", func(t *testing.T) {
		// docs/local.md: a person's reply is one POST to the simulator's
		// /_sim/mo, which posts it to the postback URL as Skycore would.
		if d.sim == "" {
			t.Fatalf("the banner names no simulator:\n%s", d.out)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
		defer cancel()
		const number = "17743199177"
		base, err := url.Parse(d.sim) // the banner names the API's URL
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(base.Scheme+"://"+base.Host+"/_sim/mo", "application/json",
			strings.NewReader(`{"from": "`+number+`", "to": "60856", "text": "STOP"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 { // 202: the simulator posts it on its own
			t.Fatalf("POST /_sim/mo: %s", resp.Status)
		}
		api := d.sqs()
		r := &client.Receiver{API: api, QueueURL: d.event, Wait: time.Second}
		seen := map[string]client.Event{}
		read := func(want ...string) {
			t.Helper()
			for ctx.Err() == nil && slices.ContainsFunc(want, func(k string) bool { _, ok := seen[k]; return !ok }) {
				if _, err := r.Poll(ctx, func(_ context.Context, e client.Event) error {
					switch {
					case e.Event == client.Inbound && e.From == number:
						seen["inbound"] = e
					case e.Event == client.OptOut && e.To == number:
						seen["optout"] = e
					case e.ID != "":
						seen[e.ID] = e
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			for _, k := range want {
				if _, ok := seen[k]; !ok {
					t.Fatalf("no %s event (read %v)", k, seen)
				}
			}
		}
		read("inbound", "optout")
		if e := seen["inbound"]; e.ID != "" || e.To != "60856" || e.Text != "STOP" || e.Code != "N211" {
			t.Errorf("inbound = %+v", e)
		}
		if e := seen["optout"]; e.ID != "" || e.From != "60856" || e.Keyword != "STOP" {
			t.Errorf("optout = %+v", e)
		}
		c := client.New(api, d.send, client.Policy{DefaultFrom: "60856"})
		if err := c.Send(ctx, client.Request{ID: "after-stop-1", To: number, MMSID: "1000"}); err != nil {
			t.Fatal(err)
		}
		read("after-stop-1")
		if e := seen["after-stop-1"]; e.Event != client.Rejected || e.Code != "OPTED_OUT" || !e.Suppressed {
			t.Errorf("the request after the STOP = %s %s suppressed=%v (%s), want rejected OPTED_OUT", e.Event, e.Code, e.Suppressed, e.Error)
		}
	})

	t.Run("put-secret-value and get-secret-value, as the README says", func(t *testing.T) {
		aws := "/usr/bin/aws"
		if _, err := os.Stat(aws); err != nil {
			if aws, err = exec.LookPath("aws"); err != nil {
				t.Skip("no AWS CLI")
			}
		}
		env := append(os.Environ(), "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_DEFAULT_REGION=us-east-1")
		const value = `{"api_key":"sim-api-key","postback_token":"local-postback-token"}`
		for _, args := range [][]string{
			{"secretsmanager", "put-secret-value", "--secret-id", "mmsgate/skycore", "--secret-string", value},
			{"secretsmanager", "describe-secret", "--secret-id", "mmsgate/skycore"},
		} {
			cmd := exec.Command(aws, append([]string{"--endpoint-url", d.endpoint}, args...)...)
			cmd.Env = env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
		cmd := exec.Command(aws, "--endpoint-url", d.endpoint, "secretsmanager", "get-secret-value", "--secret-id", "mmsgate/skycore",
			"--query", "SecretString", "--output", "text")
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil || strings.TrimSpace(string(out)) != value {
			t.Fatalf("get-secret-value = %q, %v; want %s", out, err, value)
		}
	})

	t.Run("Ctrl-C stops every child process", func(t *testing.T) {
		kids := descendants(d.cmd.Process.Pid)
		if len(kids) < 5 { // dynalite, moto, two emulators and their functions
			t.Errorf("only %d child processes before Ctrl-C: %v", len(kids), kids)
		}
		d.cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- d.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("exit after Ctrl-C: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("still running 20 s after Ctrl-C")
		}
		deadline := time.Now().Add(5 * time.Second)
		for _, pid := range kids {
			for alive(pid) && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if alive(pid) {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				t.Errorf("process %d survived Ctrl-C: %s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
			}
		}
	})
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
