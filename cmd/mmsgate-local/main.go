// Command mmsgate-local runs mmsgate on this machine with no AWS account:
// the real bootstraps under the Lambda Runtime Interface Emulator, the
// Skycore simulator, dynalite and protocol-level stand-ins for SQS and
// Secrets Manager. By default it sends the sample events and prints each
// id's outcome; -invoke runs one function on one event; -stand-ins only
// serves the stand-ins on fixed ports, for `sam local` with env.json.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mmsgate/mmsgate/internal/faultproxy"
	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/sim"
	"github.com/mmsgate/mmsgate/internal/stack"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/sendreq"
)

func main() {
	eventsPath := flag.String("events", "events/sqs", "a file or a folder of *.json files: SQS events, bare requests, JSON arrays of requests, or JSON lines")
	quiet := flag.Bool("quiet", false, "no progress line")
	invoke := flag.String("invoke", "", "run one function (send-mms or postback) on -event and print its answer")
	event := flag.String("event", "", "event file for -invoke")
	devMode := flag.Bool("dev", false, "run as a long-running local service on fixed ports until Ctrl-C (make dev)")
	var dc devConfig
	flag.StringVar(&dc.Bind, "bind", envOr("MMSGATE_BIND", "127.0.0.1"), "-dev: listen address ($MMSGATE_BIND; 0.0.0.0 for containers)")
	flag.IntVar(&dc.SQSPort, "sqs-port", envInt("MMSGATE_SQS_PORT", 9324), "-dev: SQS and Secrets Manager (moto) port ($MMSGATE_SQS_PORT)")
	flag.IntVar(&dc.DynamoPort, "dynamodb-port", envInt("MMSGATE_DYNAMODB_PORT", 8000), "-dev: DynamoDB port ($MMSGATE_DYNAMODB_PORT)")
	flag.IntVar(&dc.SimPort, "sim-port", envInt("MMSGATE_SIM_PORT", 8099), "-dev: Skycore simulator port ($MMSGATE_SIM_PORT)")
	flag.IntVar(&dc.APIPort, "api-port", envInt("MMSGATE_API_PORT", 3000), "-dev: postback HTTP API port ($MMSGATE_API_PORT)")
	flag.IntVar(&dc.BatchSize, "batch-size", envInt("MMSGATE_BATCH_SIZE", 10), "-dev: the event source mapping's batch size")
	flag.DurationVar(&dc.BatchWindow, "batch-window", 0, "-dev: the event source mapping's batching window")
	flag.DurationVar(&dc.Timeout, "function-timeout", 30*time.Second, "-dev: the sender's timeout (the send queue's visibility is 6×)")
	flag.StringVar(&dc.Persist, "persist", "", "-dev: keep DynamoDB and the queues' messages in this folder across restarts")
	flag.DurationVar(&dc.StatusEvery, "status-every", time.Second, "-dev: how often the status line is refreshed")
	flag.IntVar(&dc.BulkSenders, "bulk-senders", envInt("MMSGATE_BULK_SENDERS", 1), "-dev: the bulk lane's own sender instances ($MMSGATE_BULK_SENDERS; 0: the senders serve both queues)")
	flag.BoolVar(&dc.EventBus, "event-bus", envBool("EVENT_BUS"), "-dev: every event also on an EventBridge bus with a rule to a queue ($EVENT_BUS=1)")
	postbackURL := flag.String("postback-url", os.Getenv("POSTBACK_URL"), "-stand-ins: where the simulator posts delivery reports ($POSTBACK_URL; default none)")
	standIns := flag.Bool("stand-ins", false, "serve the simulator and the AWS stand-ins on fixed ports for `sam local` (Ctrl-C stops)")
	timeout := flag.Duration("timeout", 3*time.Minute, "give up after this long")
	logFile := flag.String("logs", ".run/functions.log", "where the functions' log lines go")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch {
	case *devMode:
		err = dev(ctx, dc, os.Stdout)
	case *standIns:
		err = serveStandIns(ctx, *postbackURL)
	default:
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		err = run(ctx, *eventsPath, *invoke, *event, *logFile, *quiet)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mmsgate-local:", err)
		os.Exit(1)
	}
}

// simConfig gives the sample events their scenarios (see events/sqs).
func simConfig() sim.Config {
	c := sim.Default()
	c.Accounts[0].Templates = append(c.Accounts[0].Templates, sim.Template{MMSID: 48211, Slides: 8})
	c.PostbackDelay, c.RetryInterval = sim.Duration(50*time.Millisecond), sim.Duration(time.Second)
	c.Faults = []sim.Fault{{Kind: "E503", Count: 1, Match: sim.Match{ToSuffix: "0503"}}}
	c.Scenarios = sim.Scenarios{Default: sim.ScenarioDelivered, Rules: []sim.ScenarioRule{
		{Match: sim.Match{ToSuffix: "0202"}, Scenario: sim.ScenarioFallbackDelivered},
		{Match: sim.Match{ToSuffix: "0102"}, Scenario: sim.ScenarioExpired},
		{Match: sim.Match{ToSuffix: "0101"}, Scenario: sim.ScenarioFailed},
	}}
	return c
}

func run(ctx context.Context, eventsPath, invoke, event, logFile string, quiet bool) error {
	root, err := stack.Root()
	if err != nil {
		return err
	}
	if err := os.Chdir(root); err != nil {
		return err
	}
	say := func(format string, a ...any) {
		if !quiet {
			fmt.Fprintf(os.Stderr, format+"\n", a...)
		}
	}
	say("building the bootstraps and the Runtime Interface Emulator…")
	bins, err := stack.Build(ctx, root)
	if err != nil {
		return err
	}
	os.MkdirAll(filepath.Dir(logFile), 0o755)
	logs, err := os.Create(logFile)
	if err != nil {
		return err
	}
	defer logs.Close()
	// Read the requests before starting anything: a bad file is a quick, clear error.
	var bodies []string
	files, err := eventFiles(eventsPath)
	if err != nil && invoke == "" {
		return err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		got, err := requestBodies(b)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		bodies = append(bodies, got...)
	}
	say("starting dynalite, moto (SQS, Secrets Manager), the simulator and two emulators…")
	s, err := stack.Start(ctx, bins, stack.Options{Sim: simConfig(), Logs: &waitWriter{w: logs, say: say}, Moto: true, MotoLog: ".run/moto.log",
		Returned: func(ids []string) {
			for _, id := range ids {
				say("[wait] %s: handed back by the sender (batchItemFailures); it comes back when its visibility timeout ends", orDash(id))
			}
		},
		RetryWindow: os.Getenv("SEND_RETRY_WINDOW"), InDoubtWindow: os.Getenv("SEND_INDOUBT_WINDOW"),
		// Off unless asked: make run would wait the window out.
		ReceiptWindow: os.Getenv("RECEIPT_WINDOW")})
	if err != nil {
		return err
	}
	defer s.Close()
	if invoke != "" {
		return invokeOne(ctx, s, invoke, event)
	}

	var ids []string
	seen := map[string]bool{}
	noID := 0
	for _, body := range bodies {
		if err := s.Enqueue(body); err != nil {
			return err
		}
		id := sendreq.PeekID([]byte(body))
		if id == "" {
			noID++
		} else if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	say("sending %d requests from %d event files (functions' logs in %s)…", len(ids)+noID, len(files), logFile)
	tty := isTerminal(os.Stderr)
	err = s.Pump(ctx, func(p stack.Progress) {
		if quiet {
			return
		}
		line := fmt.Sprintf("[mmsgate] batches %d · in queue %d · delivery events %d", p.Batches, p.Queued, p.Events)
		if tty {
			fmt.Fprint(os.Stderr, "\r"+line)
		} else {
			fmt.Fprintln(os.Stderr, line)
		}
	})
	if tty && !quiet {
		fmt.Fprintln(os.Stderr)
	}
	if err != nil {
		return err
	}
	return report(os.Stdout, ids, s)
}

// report prints id → final state and exits non-zero when an id did not
// reach one.
func report(w io.Writer, ids []string, s *stack.Stack) error {
	byID := map[string][]delivery.Event{}
	for _, e := range s.Events() {
		byID[e.ID] = append(byID[e.ID], e)
	}
	dlq, err := deadLetters(s)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tFINAL STATE\tTRACKING ID\tEVENTS")
	unfinished := 0
	for _, id := range ids {
		evs := byID[id]
		state, tid := final(evs)
		var codes []string
		for _, e := range evs {
			c := e.Event
			if e.Code != "" {
				c += ":" + e.Code
			}
			codes = append(codes, c)
		}
		if state == "" {
			for _, m := range dlq {
				if sendreq.PeekID([]byte(m.body)) == id {
					state = "dead-letter"
				}
			}
		}
		if state == "" {
			state, unfinished = "NOT FINAL", unfinished+1
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", id, state, orDash(tid), strings.Join(codes, " → "))
	}
	for _, m := range dlq {
		if sendreq.PeekID([]byte(m.body)) == "" {
			fmt.Fprintf(tw, "(no id)\tdead-letter\t-\t%s\n", truncate(m.reason, 70))
		}
	}
	tw.Flush()
	// Why each refused id was refused: every violated field, as the
	// rejected (or expired) event's error names them.
	for _, id := range ids {
		for _, e := range byID[id] {
			if (e.Event == delivery.Rejected || e.Event == "expired") && e.Error != "" {
				fmt.Fprintf(w, "%s %s:\n", id, e.Event)
				for _, part := range strings.Split(e.Error, "; ") {
					fmt.Fprintf(w, "  - %s\n", part)
				}
			}
		}
	}
	// The advice each accepted id did not follow (docs/codes.md, Warnings).
	for _, id := range ids {
		for _, e := range byID[id] {
			if e.Event == delivery.Accepted && len(e.Warnings) > 0 {
				fmt.Fprintf(w, "%s accepted with warnings: %s\n", id, strings.Join(e.Warnings, ", "))
			}
		}
	}
	if unfinished > 0 {
		return fmt.Errorf("%d of %d ids did not reach a final state", unfinished, len(ids))
	}
	fmt.Fprintf(w, "all %d ids reached a final state\n", len(ids))
	return nil
}

// final is the last state the events say: the sender's outcome, refined by
// the postbacks that followed it.
func final(evs []delivery.Event) (state, trackingID string) {
	rank := map[string]int{delivery.Retrying: 0, delivery.Accepted: 1, delivery.Rejected: 3, "expired": 3, delivery.Sent: 2,
		delivery.Delivered: 3, delivery.Undelivered: 3, delivery.Failed: 3}
	best := -1
	for _, e := range evs {
		if e.TrackingID != "" {
			trackingID = e.TrackingID
		}
		if r := rank[e.Event]; r > best && e.Event != delivery.Retrying {
			best, state = r, e.Event
			if e.Code != "" && (e.Event == delivery.Rejected || e.Event == "expired" || e.Event == delivery.Undelivered || e.Event == delivery.Failed) {
				state += " (" + e.Code + ")"
			}
		}
	}
	return state, trackingID
}

func invokeOne(ctx context.Context, s *stack.Stack, fn, event string) error {
	b, err := os.ReadFile(event)
	if err != nil {
		return err
	}
	inst := s.Postback
	switch fn {
	case "send-mms", "SendMmsFunction":
		inst = s.Senders[0]
	case "postback", "PostbackFunction":
	default:
		return fmt.Errorf("-invoke %q: want send-mms or postback", fn)
	}
	out, err := inst.Invoke(ctx, b)
	fmt.Println(string(out))
	if err != nil {
		return err
	}
	if err := s.Sim.WaitIdle(ctx); err != nil {
		return err
	}
	for _, e := range s.Events() {
		line, _ := json.Marshal(e)
		fmt.Println("delivery event:", string(line))
	}
	return nil
}

// serveStandIns runs the simulator and the stand-ins on the ports env.json
// names (host.docker.internal:8099, 8000, 9324, 4585): moto serves SQS and
// Secrets Manager on 9324, and 4585 forwards to it for env.json's
// AWS_ENDPOINT_URL_SECRETS_MANAGER. Queue URLs name moto's account
// (123456789012); moto finds a queue by its name, so env.json's
// 000000000000 URLs work too.
func serveStandIns(ctx context.Context, postbackURL string) error {
	bind := os.Getenv("BIND")
	if bind == "" {
		bind = "127.0.0.1"
	}
	env, err := localenv.Start(ctx, localenv.Options{Moto: true, MotoLog: ".run/stand-ins/moto.log",
		Ports: localenv.Ports{Dynamo: 8000, SQS: 9324, Bind: bind}})
	if err != nil {
		return err
	}
	defer env.Close()
	secrets, secretsURL, err := faultproxy.Front(env.Moto.URL, bind+":4585")
	if err != nil {
		return fmt.Errorf("secrets manager on 4585: %w", err)
	}
	defer secrets.Close()
	c := simConfig()
	c.PostbackURL = postbackURL
	s, err := sim.New(c)
	if err != nil {
		return err
	}
	base, err := s.Start(bind + ":8099")
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Printf("simulator %s%s (postbacks to %s)\nDynamoDB %s · SQS and Secrets Manager (moto) %s · Secrets Manager also %s\n"+
		"secret %s, table %s\nqueues %s\n       %s\n       %s\nstand-ins ready; Ctrl-C stops.\n",
		base, sim.APIPath, orDash(postbackURL), env.DynamoURL, env.SQSURL, secretsURL, localenv.SecretID, localenv.Table,
		env.SendQueueURL, env.DLQURL, env.EventsQueueURL)
	<-ctx.Done()
	return nil
}

func eventFiles(p string) ([]string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	files, err := filepath.Glob(filepath.Join(p, "*.json"))
	sort.Strings(files)
	return files, err
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
