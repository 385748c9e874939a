package ops

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mmsgate/mmsgate/pkg/store"
	"github.com/mmsgate/mmsgate/pkg/version"
)

// DefaultTable is the table's name when neither --table nor
// MESSAGES_TABLE says otherwise (the local stand-ins' name).
const DefaultTable = "mmsgate-messages"

// Exit statuses of Run.
const (
	ExitOK      = 0
	ExitFailure = 1 // unknown id, nothing to lift, an AWS error
	ExitUsage   = 2
)

// CLI is the mmsgate command line with its surroundings.
type CLI struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Connect builds the AWS clients once the flags are known
	// (ConnectAWS; tests give memdb and a fake SQS).
	Connect func(ctx context.Context, g Global) (*Clients, error)
	Now     func() time.Time
}

const usage = `mmsgate: look into and operate a running mmsgate (its DynamoDB table and SQS queues).

Usage:
  mmsgate [global flags] <command> [flags] [arguments]

Commands:
  status <id>                  what happened to one request: each attempt (time, outcome, code),
                               the claim, acceptance and tracking id, the terminal state, postbacks
  status --tracking <id>       the same, starting from Skycore's tracking id
  suppress list                the suppression list: numbers whose requests are rejected locally,
                               with the reason, the source (E110, E114, keyword, operator) and when
  suppress add <number>        put a number on the list until lifted (--from CODE, --reason TEXT)
  suppress lift <number>       take a number off the list (--campaign C, --from CODE for such entries)
  cancel <id>                  queue a cancel of one request (--queue URL, default $SEND_QUEUE_URL)
  redrive --dlq URL --to URL   move dead-letter messages back to the send queue (--dry-run lists them,
                               revivable or final; --renew sends final ones under a new id)
  version                      the mmsgate version this tool was built from
  help [command]               this text, or a command's (so does -h after any command)

Global flags (before or after the command):
  --table NAME     the DynamoDB table (default $MESSAGES_TABLE, else mmsgate-messages)
  --region REGION  the AWS region (default: the SDK's, from AWS_REGION or the profile;
                   us-east-1 with --endpoint)
  --endpoint URL   send every AWS call to this endpoint (local stand-ins); the SDK also reads
                   AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_SQS
  --json           print one JSON document instead of text

On AWS it uses the usual credential chain (environment, profile, SSO, instance or task role).
Against ` + "`make dev`" + ` (DynamoDB on :8000, SQS on :9324) any credentials work, but some must be set:
  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1
  mmsgate --endpoint http://127.0.0.1:8000 status hello-1
or, for both services at once (redrive reads the table too):
  export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 AWS_ENDPOINT_URL_SQS=http://127.0.0.1:9324
  mmsgate redrive --dry-run \
    --dlq http://127.0.0.1:9324/123456789012/mmsgate-send-dlq --to http://127.0.0.1:9324/123456789012/mmsgate-send

Exit status: 0 done, 1 failed (unknown id, nothing to lift, an AWS error), 2 usage.
`

const statusUsage = `Usage: mmsgate status [flags] <id>
       mmsgate status [flags] --tracking <trackingId>

Prints what happened to one request, from its record (msg#<id>) and its tracking
item (trk#<trackingId>): every attempt kept (the last 20) with its time, outcome
and code; the claim owner and lease while a sender holds it; the in-doubt window
(a call that may have reached Skycore is not sent again before it ends, unless a
postback proves the acceptance); the acceptance and tracking id, by the sender or
by a postback; the terminal state, an event recorded but not yet published, and
suppression; then the tracking id's postbacks (done or pending) and the highest
state reached. Times are UTC. --json prints the same as one JSON document (see
ops.Report: every field always present, times RFC 3339 with milliseconds).
Exit status 1 when the table has no such id.

Flags:
`

const suppressUsage = `Usage: mmsgate suppress list
       mmsgate suppress add [--from CODE] [--reason TEXT] <number>
       mmsgate suppress lift [--campaign C | --from CODE] <number>

A request to a number on the suppression list is rejected locally, with no Skycore
call ("suppressed": true in its rejected event). Entries come from:
  E110, E114, E715  Skycore refused the number for good (SUPPRESS_CODES): E110 lasts
                    SUPPRESS_TTL, E114 until lifted; E715 is for one campaign only
  keyword           the person wrote an opt-out keyword (STOP...) to one code: requests
                    to the number from that code are rejected with OPTED_OUT until an
                    opt-in keyword (START...) or a lift
  operator          "add": until lifted, for every code or (--from) one code; OPTED_OUT
"list" prints the live entries with their source, reason and times (a Scan of the
table, which the functions' roles cannot do); "lift" ends one now, so that the next
request to the number is sent. An entry for one campaign is lifted with --campaign,
one for one code with --from. Exit status 1 when there is no live entry to lift.
<number> is read as a request's "to" is: "+1 (774) 319-9144" is 17743199144.

Flags:
`

const redriveUsage = `Usage: mmsgate redrive --dlq URL --to URL [--dry-run] [--renew] [--max N] [--native [--rate N]]

Moves messages from the dead-letter queue back to the send queue. The bulk lane has
its own pair: redrive BulkSendDeadLetterQueueUrl to BulkSendQueueUrl (the queue is
the lane; --to the transactional queue would promote bulk requests). Bodies get there
two ways: the sender moves a body it can never process (not JSON, no usable id) or
whose request expired, with message attribute "error" (the reason) and
"originalMessageId"; and the send queue's redrive policy moves a message received
maxReceiveCount times without success (the sender kept failing). Each is listed
with its request id, why it is there, when it was first sent, and what its record
in the table (--table) says:
  revivable    no record, or not final: the sender takes it up again
  final        accepted, rejected or expired: the sender would ignore it
  no valid id  the sender can never process it
  unknown      the table could not be read (the message moves as it is)

--dry-run lists and moves nothing. SQS has no peek: each message is received once
and hidden for one second (its receive count goes up by one), nothing else.

By default each revivable (or unknown) message is received, sent to --to with the
same body and the message attributes an application set (not "error",
"originalMessageId" or any mmsgate-* attribute), then deleted from the DLQ. A final
one stays on the DLQ and is reported, as does one without a valid id, and one the
redrive policy of another queue than --to moved (it goes back to its own queue
only: a run --to that queue moves it); the exit status is then 1. This is at least once: if the command dies between the send and
the delete, the message stays on the DLQ and a later run sends it again;
the sender's idempotency on "id" absorbs the duplicate. A failed send deletes
nothing and stops the run. Works against AWS and the local stand-ins alike (give the
table's endpoint through AWS_ENDPOINT_URL_DYNAMODB when it is not --endpoint's).

--renew also sends the body of an expired or rejected request again, under a new
id derived from its own (<id>.r1; <id>.r2 for <id>.r1) with "renewedFrom": <id> in
its "metadata": after an outage that expired requests, this one command sends them
again. The new id depends on the old one alone, so a run repeated after a crash
sends the same id again, which the sender ignores. An accepted request is never
renewed (its recipient would get it twice). An expired request that was in doubt
(its call may have reached Skycore) is sent again like any in-doubt request whose
window passed without a postback.

--native starts SQS's own move task (StartMessageMoveTask, AWS only), which moves
every message as it is, attributes included, final ones too; follow it with
  aws sqs list-message-move-tasks --source-arn <the DLQ's ARN>

Flags:
`

// Run runs one command line (without the program name) and returns the
// exit status.
func (c *CLI) Run(ctx context.Context, args []string) int {
	if c.Getenv == nil {
		c.Getenv = func(string) string { return "" }
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	g := Global{Table: c.Getenv("MESSAGES_TABLE")}
	if g.Table == "" {
		g.Table = DefaultTable
	}
	top := c.flags("mmsgate", usage, &g)
	rest, err := parseArgs(top, args, false)
	if err != nil {
		return c.parseFailed(err)
	}
	if len(rest) == 0 {
		fmt.Fprint(c.Stderr, usage)
		return ExitUsage
	}
	cmd, rest := rest[0], rest[1:]
	switch cmd {
	case "help":
		return c.help(rest)
	case "version":
		fmt.Fprintln(c.Stdout, "mmsgate", version.Version)
		return ExitOK
	case "status":
		return c.status(ctx, &g, rest)
	case "suppress":
		return c.suppress(ctx, &g, rest)
	case "redrive":
		return c.redrive(ctx, &g, rest)
	case "cancel":
		return c.cancel(ctx, &g, rest)
	}
	fmt.Fprintf(c.Stderr, "mmsgate: unknown command %q (mmsgate help lists them)\n", cmd)
	return ExitUsage
}

// flags is a flag set with the global flags on it; it prints text and
// its flags on -h.
func (c *CLI) flags(name, text string, g *Global) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.Table, "table", g.Table, "the DynamoDB table ($MESSAGES_TABLE, else "+DefaultTable+")")
	fs.StringVar(&g.Region, "region", g.Region, "the AWS region (default: the SDK's)")
	fs.StringVar(&g.Endpoint, "endpoint", g.Endpoint, "one endpoint for every AWS call (local stand-ins)")
	fs.BoolVar(&g.JSON, "json", g.JSON, "print JSON")
	fs.Usage = func() {
		fmt.Fprint(c.Stdout, text)
		if name != "mmsgate" {
			fs.SetOutput(c.Stdout)
			fs.PrintDefaults()
			fs.SetOutput(io.Discard)
		}
	}
	return fs
}

// parseArgs parses the flags and returns the other arguments. With
// interspersed, flags may come after arguments too (status order-1 --json);
// without, the first argument ends the flags (the global flags end at the
// command's name). "--" ends the flags.
func parseArgs(fs *flag.FlagSet, args []string, interspersed bool) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := args[:len(args)-len(rest)]; len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		if !interspersed {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

func (c *CLI) parseFailed(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	fmt.Fprintf(c.Stderr, "mmsgate: %v (-h for help)\n", err)
	return ExitUsage
}

func (c *CLI) usageError(format string, args ...any) int {
	fmt.Fprintf(c.Stderr, "mmsgate: "+format+" (-h for help)\n", args...)
	return ExitUsage
}

func (c *CLI) failed(err error) int {
	fmt.Fprintf(c.Stderr, "mmsgate: %v\n", err)
	return ExitFailure
}

func (c *CLI) help(args []string) int {
	text := map[string]string{"status": statusUsage, "suppress": suppressUsage, "redrive": redriveUsage, "cancel": cancelUsage}
	if len(args) == 0 {
		fmt.Fprint(c.Stdout, usage)
		return ExitOK
	}
	t, ok := text[args[0]]
	if !ok {
		return c.usageError("no help for %q", args[0])
	}
	var g Global
	fs := c.flags(args[0], t, &g)
	c.subFlags(args[0], fs)
	fs.Usage()
	return ExitOK
}

// subFlags adds a command's own flags (to a throwaway set, for help).
func (c *CLI) subFlags(cmd string, fs *flag.FlagSet) {
	switch cmd {
	case "status":
		fs.String("tracking", "", "start from this tracking id instead of the request's id")
	case "suppress":
		suppressFlags(fs)
	case "redrive":
		var o RedriveOptions
		redriveFlags(fs, &o)
	case "cancel":
		fs.String("queue", "", "the send queue's URL (SEND_QUEUE_URL)")
	}
}

func (c *CLI) connect(ctx context.Context, g *Global) (*Clients, *store.Store, error) {
	cl, err := c.Connect(ctx, *g)
	if err != nil {
		return nil, nil, fmt.Errorf("AWS configuration: %w", err)
	}
	st := store.New(cl.DB, g.Table, 0)
	st.SetClock(c.Now) // one clock for what the CLI writes and what it reports
	return cl, st, nil
}

func (c *CLI) status(ctx context.Context, g *Global, args []string) int {
	fs := c.flags("status", statusUsage, g)
	tracking := fs.String("tracking", "", "start from this tracking id instead of the request's id")
	pos, err := parseArgs(fs, args, true)
	if err != nil {
		return c.parseFailed(err)
	}
	switch {
	case *tracking == "" && len(pos) != 1:
		return c.usageError("status wants one id")
	case *tracking != "" && len(pos) != 0:
		return c.usageError("status wants an id or --tracking, not both")
	}
	_, st, err := c.connect(ctx, g)
	if err != nil {
		return c.failed(err)
	}
	var rep *Report
	if *tracking != "" {
		rep, err = StatusByTracking(ctx, st, *tracking, c.Now())
	} else {
		rep, err = Status(ctx, st, pos[0], c.Now())
	}
	if errors.Is(err, ErrNotFound) {
		return c.failed(fmt.Errorf("%w in table %s", err, g.Table))
	}
	if err != nil {
		return c.failed(err)
	}
	if g.JSON {
		err = rep.WriteJSON(c.Stdout)
	} else {
		err = rep.WriteText(c.Stdout)
	}
	if err != nil {
		return c.failed(err)
	}
	return ExitOK
}

func (c *CLI) suppress(ctx context.Context, g *Global, args []string) int {
	fs := c.flags("suppress", suppressUsage, g)
	campaign, from, reason := suppressFlags(fs)
	pos, err := parseArgs(fs, args, true)
	if err != nil {
		return c.parseFailed(err)
	}
	if len(pos) == 0 {
		return c.usageError("suppress wants list, add or lift")
	}
	switch {
	case pos[0] == "list" && len(pos) == 1:
		if *campaign != "" || *from != "" || *reason != "" {
			return c.usageError("--campaign, --from and --reason are for add and lift")
		}
		cl, st, err := c.connect(ctx, g)
		if err != nil {
			return c.failed(err)
		}
		sups, err := Suppressions(ctx, st, cl.DB)
		if err != nil {
			return c.failed(err)
		}
		if err := WriteSuppressions(c.Stdout, sups, g.JSON); err != nil {
			return c.failed(err)
		}
		return ExitOK
	case pos[0] == "add" && len(pos) == 2:
		if *campaign != "" {
			return c.usageError("suppress add takes --from, not --campaign")
		}
		_, st, err := c.connect(ctx, g)
		if err != nil {
			return c.failed(err)
		}
		key, err := Add(ctx, st, pos[1], *from, *reason)
		if err != nil {
			return c.failed(err)
		}
		if g.JSON {
			fmt.Fprintf(c.Stdout, "{\"suppressed\": %q}\n", key)
		} else {
			fmt.Fprintf(c.Stdout, "suppressed %s: its requests are rejected (OPTED_OUT) until `mmsgate suppress lift`\n", key)
		}
		return ExitOK
	case pos[0] == "lift" && len(pos) == 2:
		if *campaign != "" && *from != "" {
			return c.usageError("suppress lift takes --campaign or --from, not both")
		}
		if *reason != "" {
			return c.usageError("--reason is for add")
		}
		_, st, err := c.connect(ctx, g)
		if err != nil {
			return c.failed(err)
		}
		key, err := Lift(ctx, st, pos[1], *campaign, *from)
		if err != nil {
			return c.failed(err)
		}
		if g.JSON {
			fmt.Fprintf(c.Stdout, "{\"lifted\": %q}\n", key)
		} else {
			fmt.Fprintf(c.Stdout, "lifted %s: the next request to it is sent\n", key)
		}
		return ExitOK
	case pos[0] == "lift" || pos[0] == "add":
		return c.usageError("suppress %s wants one number", pos[0])
	}
	return c.usageError("suppress wants list, add <number> or lift <number>, not %q", strings.Join(pos, " "))
}

func suppressFlags(fs *flag.FlagSet) (campaign, from, reason *string) {
	campaign = fs.String("campaign", "", "lift: the entry of this campaignRef only")
	from = fs.String("from", "", "add, lift: the entry for requests from this short or long code only")
	reason = fs.String("reason", "", "add: why, shown by list")
	return campaign, from, reason
}

func redriveFlags(fs *flag.FlagSet, o *RedriveOptions) {
	fs.StringVar(&o.DLQ, "dlq", "", "the dead-letter queue's URL (DEAD_LETTER_QUEUE_URL)")
	fs.StringVar(&o.To, "to", "", "the send queue's URL (SEND_QUEUE_URL)")
	fs.BoolVar(&o.DryRun, "dry-run", false, "list what would move and why each is there; change nothing")
	fs.IntVar(&o.Max, "max", 0, "move at most N messages (0: all)")
	fs.BoolVar(&o.Renew, "renew", false, "send the body of an expired or rejected id again under <id>.r1 (metadata.renewedFrom)")
	fs.BoolVar(&o.Native, "native", false, "start SQS's StartMessageMoveTask instead (AWS)")
	fs.IntVar(&o.Rate, "rate", 0, "--native: messages per second (0: SQS's default)")
	fs.DurationVar(&o.Visibility, "visibility", 2*time.Minute, "how long each received message stays hidden while it is handled")
}

func (c *CLI) redrive(ctx context.Context, g *Global, args []string) int {
	fs := c.flags("redrive", redriveUsage, g)
	var o RedriveOptions
	redriveFlags(fs, &o)
	pos, err := parseArgs(fs, args, true)
	if err != nil {
		return c.parseFailed(err)
	}
	switch {
	case len(pos) != 0:
		return c.usageError("redrive takes no arguments, only flags (got %q)", strings.Join(pos, " "))
	case o.DLQ == "" || o.To == "":
		return c.usageError("redrive wants --dlq and --to")
	case o.DLQ == o.To:
		return c.usageError("--dlq and --to are the same queue")
	case o.Max < 0 || o.Rate < 0:
		return c.usageError("--max and --rate cannot be negative")
	case o.Native && o.Max > 0:
		return c.usageError("--max does not apply to --native (SQS moves every message; --rate slows it)")
	case o.Native && o.Renew:
		return c.usageError("--renew does not apply to --native (SQS moves bodies as they are)")
	}
	if g.Region == "" && g.Endpoint == "" {
		g.Region = regionOfQueue(o.DLQ)
	}
	cl, st, err := c.connect(ctx, g)
	if err != nil {
		return c.failed(err)
	}
	var recs messages
	if cl.DB != nil {
		recs = st
	}
	tw := tabwriter.NewWriter(c.Stdout, 0, 0, 2, ' ', 0)
	each := func(d Dead) {
		if g.JSON {
			return
		}
		id := d.ID
		if id == "" {
			id = "(no usable id)"
		}
		fmt.Fprintf(tw, "%s\t%s\tid %s\tsent %s\t%s\n", redriveVerb(d, o.DryRun), d.MessageID, id, seconds(d.SentAt), d.Reason)
		if d.OriginalMessageID != "" {
			fmt.Fprintf(tw, "\t\t\t\toriginalMessageId %s\n", d.OriginalMessageID)
		}
		if note := redriveNote(d, o.DryRun); note != "" {
			fmt.Fprintf(tw, "\t\t\t\t%s\n", note)
		}
	}
	res, err := Redrive(ctx, cl.SQS, recs, o, each)
	tw.Flush()
	if err == nil && res.Kept > 0 {
		err = fmt.Errorf("%d message(s) kept on the dead-letter queue (see above)", res.Kept)
	}
	if err != nil {
		res.Error = err.Error()
	}
	if g.JSON {
		if jerr := writeJSON(c.Stdout, res); jerr != nil && err == nil {
			err = jerr
		}
	} else {
		c.redriveSummary(res, o)
	}
	if err != nil {
		return c.failed(err)
	}
	return ExitOK
}

// redriveVerb is the first column of a message's line.
func redriveVerb(d Dead, dryRun bool) string {
	switch {
	case d.Renewed:
		return "renewed"
	case d.Moved:
		return "moved"
	case !dryRun:
		return "kept"
	case d.Verdict == VerdictFinal:
		return "final " + d.State
	}
	return d.Verdict
}

// redriveNote is the line under a message's: what a redrive does with it.
func redriveNote(d Dead, dryRun bool) string {
	switch {
	case d.Renewed:
		return "as " + d.RenewAs + " (metadata.renewedFrom " + d.ID + "), message " + d.NewMessageID
	case !dryRun:
		return d.Note
	case d.Verdict == VerdictFinal && d.State == store.StateAccepted:
		return "accepted by Skycore: never sent again"
	case d.Verdict == VerdictFinal && d.RenewAs != "":
		return "the sender would ignore it; --renew sends it as " + d.RenewAs
	case d.Verdict == VerdictFinal:
		return "the sender would ignore it; too long an id to renew"
	case d.Verdict == VerdictNoID:
		return "the sender can never process it: a redrive keeps it here"
	case d.Verdict == VerdictUnknown:
		return d.Note
	}
	return ""
}

func (c *CLI) redriveSummary(res *RedriveResult, o RedriveOptions) {
	switch {
	case res.Native:
		fmt.Fprintf(c.Stdout, "started SQS move task %s from %s\nfollow it: aws sqs list-message-move-tasks --source-arn %s\n", res.TaskHandle, res.SourceARN, res.SourceARN)
	case res.DryRun:
		n := map[string]int{}
		renewable := 0
		for _, d := range res.Messages {
			n[d.Verdict]++
			if d.RenewAs != "" {
				renewable++
			}
		}
		about := ""
		if res.Approximate >= 0 && res.Approximate != len(res.Messages) {
			about = fmt.Sprintf(" of about %d", res.Approximate)
		}
		fmt.Fprintf(c.Stdout, "dry run: %d message(s)%s listed, nothing moved (each was received once and hidden for 1s)\n", len(res.Messages), about)
		fmt.Fprintf(c.Stdout, "  %d revivable, would move to %s\n  %d final (%d would be sent again under a new id with --renew)\n  %d without a valid id, %d unknown\n",
			n[VerdictRevivable], o.To, n[VerdictFinal], renewable, n[VerdictNoID], n[VerdictUnknown])
	default:
		fmt.Fprintf(c.Stdout, "moved %d message(s) to %s", res.Moved, o.To)
		if res.Renewed > 0 {
			fmt.Fprintf(c.Stdout, " (%d under a new id)", res.Renewed)
		}
		fmt.Fprintln(c.Stdout)
		if res.Kept > 0 {
			fmt.Fprintf(c.Stdout, "kept %d message(s) on the dead-letter queue (see above)\n", res.Kept)
		}
	}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
