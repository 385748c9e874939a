package ops_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/memdb"
	"github.com/mmsgate/mmsgate/internal/ops"
	"github.com/mmsgate/mmsgate/pkg/store"
	"github.com/mmsgate/mmsgate/pkg/version"
)

const testTable = "mmsgate-messages"

// t0 is when the requests of the tests were first enqueued.
var t0 = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

// clock is the store's settable time.
type clock struct{ t time.Time }

func (c *clock) now() time.Time               { return c.t }
func (c *clock) at(d time.Duration)           { c.t = t0.Add(d) }
func (c *clock) in(d time.Duration) time.Time { return c.t.Add(d) }

// tableAPI is what the store and `suppress list` call: memdb, or a
// DynamoDB client.
type tableAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// fixture is a table with a store whose clock the test moves.
type fixture struct {
	db    tableAPI
	mem   *memdb.DB // when db is memdb
	st    *store.Store
	clock *clock
	sqs   *fakeSQS
}

// newFixture is a fixture on memdb.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := memdb.New()
	if err := store.CreateTable(context.Background(), db, testTable); err != nil {
		t.Fatal(err)
	}
	f := onTable(db)
	f.mem = db
	return f
}

// onTable is a fixture on a table that exists.
func onTable(db tableAPI) *fixture {
	f := &fixture{db: db, st: store.New(db, testTable, 0), clock: &clock{t: t0}, sqs: &fakeSQS{}}
	f.st.SetClock(f.clock.now)
	return f
}

// run runs one mmsgate command line on the fixture, the CLI's clock at
// the store's.
func (f *fixture) run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	cli := &ops.CLI{Stdout: &out, Stderr: &errOut, Now: f.clock.now,
		Getenv: func(string) string { return "" },
		Connect: func(_ context.Context, g ops.Global) (*ops.Clients, error) {
			if g.Table != testTable {
				t.Errorf("table = %q, want %q", g.Table, testTable)
			}
			return &ops.Clients{DB: f.db, SQS: f.sqs}, nil
		}}
	code = cli.Run(context.Background(), args)
	return out.String(), errOut.String(), code
}

// golden compares got with testdata/<name>, rewriting it under
// UPDATE_GOLDEN=1.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (UPDATE_GOLDEN=1 writes it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

func TestHelp(t *testing.T) {
	tests := map[string]struct {
		args     []string
		code     int
		stdout   string // a line the output must have
		inStderr string
	}{
		"no command":         {args: nil, code: ops.ExitUsage, inStderr: "Commands:"},
		"help":               {args: []string{"help"}, stdout: "redrive --dlq URL --to URL"},
		"-h":                 {args: []string{"-h"}, stdout: "Global flags"},
		"help status":        {args: []string{"help", "status"}, stdout: "-tracking string"},
		"status -h":          {args: []string{"status", "-h"}, stdout: "mmsgate status [flags] --tracking <trackingId>"},
		"suppress -h":        {args: []string{"suppress", "-h"}, stdout: "mmsgate suppress lift [--campaign C | --from CODE] <number>"},
		"redrive -h":         {args: []string{"redrive", "-h"}, stdout: "the sender's idempotency on \"id\" absorbs the duplicate"},
		"help redrive flags": {args: []string{"help", "redrive"}, stdout: "-dry-run"},
		"version":            {args: []string{"version"}, stdout: "mmsgate " + version.Version + "\n"},
		"unknown command":    {args: []string{"frobnicate"}, code: ops.ExitUsage, inStderr: `unknown command "frobnicate"`},
		"unknown flag":       {args: []string{"status", "--nope", "x"}, code: ops.ExitUsage, inStderr: "flag provided but not defined: -nope"},
		"status without id":  {args: []string{"status"}, code: ops.ExitUsage, inStderr: "status wants one id"},
		"status two ids":     {args: []string{"status", "a", "b"}, code: ops.ExitUsage, inStderr: "status wants one id"},
		"id and tracking":    {args: []string{"status", "--tracking", "T", "a"}, code: ops.ExitUsage, inStderr: "not both"},
		"suppress nothing":   {args: []string{"suppress"}, code: ops.ExitUsage, inStderr: "suppress wants list, add or lift"},
		"lift no number":     {args: []string{"suppress", "lift"}, code: ops.ExitUsage, inStderr: "wants one number"},
		"redrive no queues":  {args: []string{"redrive", "--dry-run"}, code: ops.ExitUsage, inStderr: "wants --dlq and --to"},
		"redrive same queue": {args: []string{"redrive", "--dlq", "q", "--to", "q"}, code: ops.ExitUsage, inStderr: "same queue"},
		"native with max":    {args: []string{"redrive", "--dlq", "d", "--to", "q", "--native", "--max", "3"}, code: ops.ExitUsage, inStderr: "--max does not apply"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			out, errOut, code := f.run(t, tt.args...)
			if code != tt.code {
				t.Fatalf("mmsgate %q = exit %d, want %d; stderr:\n%s", tt.args, code, tt.code, errOut)
			}
			if !strings.Contains(out, tt.stdout) {
				t.Errorf("mmsgate %q stdout lacks %q:\n%s", tt.args, tt.stdout, out)
			}
			if !strings.Contains(errOut, tt.inStderr) {
				t.Errorf("mmsgate %q stderr lacks %q:\n%s", tt.args, tt.inStderr, errOut)
			}
		})
	}
}

func TestGlobalFlags(t *testing.T) {
	tests := map[string]struct {
		args []string
		env  map[string]string
		want ops.Global
	}{
		"defaults":              {args: []string{"suppress", "list"}, want: ops.Global{Table: ops.DefaultTable}},
		"MESSAGES_TABLE":        {args: []string{"suppress", "list"}, env: map[string]string{"MESSAGES_TABLE": "prod-messages"}, want: ops.Global{Table: "prod-messages"}},
		"before the command":    {args: []string{"--table", "xtab", "--region", "eu-west-1", "--endpoint", "http://h:1", "--json", "suppress", "list"}, want: ops.Global{Table: "xtab", Region: "eu-west-1", Endpoint: "http://h:1", JSON: true}},
		"after the command":     {args: []string{"suppress", "--table=xtab", "list", "--json"}, want: ops.Global{Table: "xtab", JSON: true}},
		"flag over environment": {args: []string{"suppress", "list", "--table", "ytab"}, env: map[string]string{"MESSAGES_TABLE": "prod-messages"}, want: ops.Global{Table: "ytab"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var got ops.Global
			var errOut bytes.Buffer
			cli := &ops.CLI{Stdout: &bytes.Buffer{}, Stderr: &errOut, Getenv: func(k string) string { return tt.env[k] },
				Connect: func(_ context.Context, g ops.Global) (*ops.Clients, error) {
					got = g
					db := memdb.New()
					return &ops.Clients{DB: db}, store.CreateTable(context.Background(), db, g.Table)
				}}
			if code := cli.Run(context.Background(), tt.args); code != 0 {
				t.Fatalf("mmsgate %q = exit %d; stderr:\n%s", tt.args, code, errOut.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mmsgate %q: Global (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}
