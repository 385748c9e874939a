package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/sim"
	"github.com/mmsgate/mmsgate/internal/stack"
)

// devConfig is `make dev`'s: fixed ports, each changeable by a flag or an
// environment variable (flags win).
type devConfig struct {
	Bind                         string
	SQSPort, DynamoPort, SimPort int
	APIPort                      int
	BatchSize                    int
	BatchWindow                  time.Duration
	Timeout                      time.Duration
	Persist                      string // folder for state across restarts ("" = none)
	StatusEvery                  time.Duration
	// BulkSenders are the bulk lane's own instances (0: the senders
	// serve both queues), as each event source mapping has its own
	// MaximumConcurrency when deployed.
	BulkSenders int
	// EventBus puts every event also on an EventBridge bus (moto), with
	// a rule whose target is a queue, as an application subscribes.
	EventBus bool
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// dev runs mmsgate as a long-running local service until ctx ends (Ctrl-C).
func dev(ctx context.Context, c devConfig, out io.Writer) error {
	root, err := stack.Root()
	if err != nil {
		return err
	}
	if err := os.Chdir(root); err != nil {
		return err
	}
	fmt.Fprintln(out, "building the bootstraps and the Runtime Interface Emulator…")
	bins, err := stack.Build(ctx, root)
	if err != nil {
		return err
	}
	logDir := ".run/dev"
	os.MkdirAll(logDir, 0o755)
	logs, err := os.Create(filepath.Join(logDir, "functions.log"))
	if err != nil {
		return err
	}
	defer logs.Close()
	dynamoPath := ""
	if c.Persist != "" {
		dynamoPath = filepath.Join(c.Persist, "dynamodb")
	}
	host := c.Bind
	if host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	simCfg := sim.Default()
	// SKYCORE_RATE_LIMIT=N in the environment: the simulator's account takes
	// N calls a second (E113 beyond) and the senders share N between them.
	var senderEnv []string
	if v := os.Getenv("SKYCORE_RATE_LIMIT"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 {
			return fmt.Errorf("SKYCORE_RATE_LIMIT=%q: want calls per second", v)
		}
		simCfg.RateLimit = r
		senderEnv = append(senderEnv, "SKYCORE_RATE_LIMIT="+v)
	}
	// No postbacks to numbers ending 0000: the banner's example posts that
	// receipt by hand.
	simCfg.Scenarios.Rules = append(simCfg.Scenarios.Rules,
		sim.ScenarioRule{Match: sim.Match{ToSuffix: "0000"}, Scenario: sim.ScenarioNone})
	s, err := stack.Start(ctx, bins, stack.Options{
		Sim: simCfg, Logs: logs, Moto: true, MotoLog: filepath.Join(logDir, "moto.log"),
		Ports:       localenv.Ports{SQS: c.SQSPort, Dynamo: c.DynamoPort, Bind: c.Bind},
		DynamoPath:  dynamoPath,
		AdapterAddr: fmt.Sprintf("%s:%d", c.Bind, c.APIPort), SimAddr: fmt.Sprintf("%s:%d", c.Bind, c.SimPort),
		KeepEvents: true, SenderEnv: senderEnv, BatchSize: c.BatchSize, BatchWindow: c.BatchWindow, Timeout: c.Timeout,
		RetryWindow: os.Getenv("SEND_RETRY_WINDOW"), InDoubtWindow: os.Getenv("SEND_INDOUBT_WINDOW"),
		// unconfirmed after 10 minutes locally, so that it can be seen
		// (RECEIPT_WINDOW=0 turns it off).
		ReceiptWindow: envOr("RECEIPT_WINDOW", "10m"),
		BulkSenders:   c.BulkSenders, EventBus: c.EventBus,
		// Sweeps every few seconds rather than every minute: the same
		// send times (each body is delayed to its sendAt), sooner on screen.
		SweepPeriod: 5 * time.Second,
	})
	if err != nil {
		return err
	}
	defer s.Close()
	stateFile := ""
	if c.Persist != "" {
		stateFile = filepath.Join(c.Persist, "queues.json")
		n, err := s.Env.LoadQueues(ctx, stateFile)
		if err != nil {
			return fmt.Errorf("reload queues: %w", err)
		}
		if n > 0 {
			fmt.Fprintf(out, "reloaded %d messages from %s\n", n, stateFile)
		}
	}
	banner(out, s, c, host)

	serveErr := make(chan error, 1)
	go func() { serveErr <- s.Serve(ctx, nil) }()
	tty := isTerminal(os.Stderr)
	tick := time.NewTicker(c.StatusEvery)
	defer tick.Stop()
	last := ""
	for {
		select {
		case err := <-serveErr:
			if tty {
				fmt.Fprintln(os.Stderr)
			}
			if err != nil && ctx.Err() == nil {
				return err
			}
			return shutdown(s, stateFile, out)
		case <-tick.C:
			st, err := s.Status(ctx)
			if err != nil {
				continue
			}
			line := fmt.Sprintf("[mmsgate dev] send queue %d waiting, %d hidden · bulk %d waiting, %d hidden · in flight %d · batches %d · delivery events %d · DLQ %d",
				st.Send.Visible+st.Send.Delayed, st.Send.InFlight, st.Bulk.Visible+st.Bulk.Delayed, st.Bulk.InFlight, st.InFlight, st.Batches,
				st.Events.Total(), st.DLQ.Total()+st.BulkDLQ.Total())
			switch {
			case tty:
				fmt.Fprint(os.Stderr, "\r"+line+"\x1b[K")
			case line != last:
				fmt.Fprintln(os.Stderr, line)
			}
			last = line
		}
	}
}

// shutdown keeps the queues when asked; the deferred Close stops every
// child process (moto, dynalite, the emulators and their functions).
func shutdown(s *stack.Stack, stateFile string, out io.Writer) error {
	fmt.Fprintln(out, "stopping…")
	if stateFile == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, _ := s.Status(ctx)
	n, err := s.Env.SaveQueues(ctx, stateFile)
	if err != nil {
		return fmt.Errorf("save queues: %w", err)
	}
	fmt.Fprintf(out, "kept %d messages in %s", n, stateFile)
	if hidden := st.Send.InFlight + st.Bulk.InFlight + st.Events.InFlight + st.DLQ.InFlight + st.BulkDLQ.InFlight; hidden > 0 {
		fmt.Fprintf(out, " (%d were hidden by a receive and are not kept)", hidden)
	}
	fmt.Fprintln(out)
	return nil
}

var bannerText = template.Must(template.New("banner").Parse(`
mmsgate dev: the whole system as a local service. Ctrl-C stops everything.

  SQS + Secrets Manager (moto)  {{.AWS}}
  send queue                    {{.Send}}
                                (batches of {{.Batch}}, window {{.Window}}, visibility {{.Visibility}}, DLQ after {{.MaxReceive}} receives)
  bulk send queue               {{.Bulk}}
                                (the bulk lane: same bodies, only the throughput the send queue leaves{{if .BulkSenders}};
                                its own {{.BulkSenders}} sender instance(s){{end}})
  delivery events queue         {{.Events}}   (left for your application)
  dead-letter queue             {{.DLQ}}
  event bus                     {{if .Bus}}{{.Bus}}   (EventBridge on moto: every event, source mmsgate, detail-type its kind)
  event bus rule's queue        {{.BusQueue}}   (rule {{.BusRule}}: what an application's rule would get){{else}}off (EVENT_BUS=1 turns it on){{end}}
  bulk dead-letter queue        {{.BulkDLQ}}
  Skycore rate limit            {{if .Rate}}{{.Rate}} calls/s, shared by the senders (SKYCORE_RATE_LIMIT){{else}}off (SKYCORE_RATE_LIMIT=N turns it on){{end}}
  DynamoDB (dynalite)           {{.Dynamo}}   table {{.Table}}{{if .Persist}}, kept in {{.Persist}}{{end}}
  Skycore simulator             {{.Sim}}   API key sim-api-key
  postback URL                  {{.Postback}}
  secret                        {{.Secret}} (SKYCORE_SECRET_ID and POSTBACK_SECRET_ID)
  logs                          .run/dev/functions.log, .run/dev/moto.log

Any credentials and region work:
  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_DEFAULT_REGION={{.Region}}

Send a request:
  aws --endpoint-url {{.AWS}} sqs send-message --queue-url {{.Send}} \
    --message-body '{"id":"hello-1","to":"17743199144","mmsId":1000,"slides":[{"slide":1,"text":"Hi"}]}'

Send a bulk request (it waits for nothing but throughput the send queue leaves):
  aws --endpoint-url {{.AWS}} sqs send-message --queue-url {{.Bulk}} \
    --message-body '{"id":"campaign-1","to":"17743199144","mmsId":1000}'

Read the delivery events (then delete each with its ReceiptHandle, as an application would):
  aws --endpoint-url {{.AWS}} sqs receive-message --queue-url {{.Events}} \
    --max-number-of-messages 10 --wait-time-seconds 10 --message-attribute-names All
  aws --endpoint-url {{.AWS}} sqs delete-message --queue-url {{.Events}} --receipt-handle HANDLE

Post a delivery report yourself: the simulator posts N101 and N102 for every accepted message except
to numbers ending 0000, so send to one, take its tracking id from its record and post its receipt
(a tracking id nobody linked gets 503, for Skycore to retry: docs/postback.md):
  aws --endpoint-url {{.AWS}} sqs send-message --queue-url {{.Send}} \
    --message-body '{"id":"hello-2","to":"17745550000","mmsId":1000,"slides":[{"slide":1,"text":"Hi"}]}'
  tid=$(go run ./cmd/mmsgate --endpoint {{.Dynamo}} status --json hello-2 | jq -r .message.trackingId)
  curl -i -X POST {{.Postback}} -H 'Content-Type: text/xml' \
    --data "<POSTBACK><CODE>N102</CODE><TRACKINGID>$tid</TRACKINGID><STATUS>Message Sent/Delivered</STATUS></POSTBACK>"

Change the API key (the simulator knows only sim-api-key: others give E104, and requests wait):
  aws --endpoint-url {{.AWS}} secretsmanager put-secret-value --secret-id {{.Secret}} \
    --secret-string '{"api_key":"sim-api-key","postback_token":"local-postback-token"}'

Look at the dead-letter queue (revivable or final), and move what is there back to the send queue
(--renew: expired and rejected ones under a new id):
  AWS_ENDPOINT_URL_SQS={{.AWS}} AWS_ENDPOINT_URL_DYNAMODB={{.Dynamo}} \
    go run ./cmd/mmsgate redrive --dlq {{.DLQ}} --to {{.Send}} [--dry-run] [--renew]

What happened to one request:
  go run ./cmd/mmsgate --endpoint {{.Dynamo}} status hello-1

`))

// rateLimit is SKYCORE_RATE_LIMIT when it is on, "" when not.
func rateLimit() string {
	v := os.Getenv("SKYCORE_RATE_LIMIT")
	if r, err := strconv.ParseFloat(v, 64); err != nil || r <= 0 {
		return ""
	}
	return v
}

func banner(out io.Writer, s *stack.Stack, c devConfig, host string) {
	bannerText.Execute(out, map[string]any{
		"AWS": s.Env.SQSURL, "Send": s.Env.SendQueueURL, "Events": s.Env.EventsQueueURL, "DLQ": s.Env.DLQURL,
		"Bulk": s.Env.BulkSendQueueURL, "BulkDLQ": s.Env.BulkDLQURL, "Rate": rateLimit(),
		"Dynamo": s.Env.DynamoURL, "Table": localenv.Table, "Persist": c.Persist,
		"Sim":      strings.Replace(s.SimURL, c.Bind, host, 1) + sim.APIPath,
		"Postback": strings.Replace(s.Adapter, c.Bind, host, 1) + "/skycore/postbacks/" + s.Token,
		"Secret":   localenv.SecretID, "Region": localenv.Region,
		"BulkSenders": c.BulkSenders, "Bus": s.Env.EventBusName, "BusQueue": s.Env.BusQueueURL, "BusRule": localenv.BusRule,
		"Batch": c.BatchSize, "Window": c.BatchWindow, "Visibility": 6 * c.Timeout, "MaxReceive": 5,
	})
}

// envBool is a true-ish variable (1, true); anything else is false.
func envBool(name string) bool {
	b, _ := strconv.ParseBool(os.Getenv(name))
	return b
}
