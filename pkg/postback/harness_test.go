package postback

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mmsgate/mmsgate/internal/faultproxy"
	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/memdb"
	"github.com/mmsgate/mmsgate/pkg/applog"
	"github.com/mmsgate/mmsgate/pkg/delivery"
	"github.com/mmsgate/mmsgate/pkg/emf"
	"github.com/mmsgate/mmsgate/pkg/keyword"
	"github.com/mmsgate/mmsgate/pkg/secret"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// harness is the handler on local stand-ins through the real SDK clients:
// moto's SQS and Secrets Manager behind fault proxies (fakesqs and
// fakesecrets under -short), and DynamoDB either in memory (memdb, no
// emulator) or dynalite behind the fault proxy.
type harness struct {
	h     *Handler
	store *store.Store
	logs  *localenv.Logs
	env   *localenv.Env
	// The fault proxies in front of SQS and Secrets Manager.
	sqsFaults, secretsFaults *faultproxy.Proxy
	throttle                 func() // DynamoDB throttles every call from now on
	base                     time.Time
	off                      time.Duration // how far the handler's and the store's clock has moved
}

// newHarness runs on memdb: `go test -short ./pkg/postback/` needs no Node.
func newHarness(t *testing.T) *harness { return newHarnessOn(t, false) }

// newHarnessOn runs on dynalite (localenv) when dynalite is true.
func newHarnessOn(t *testing.T, dynalite bool) *harness {
	t.Helper()
	ctx := context.Background()
	hs := &harness{logs: &localenv.Logs{}, base: time.Now()}
	// SQS and Secrets Manager behind their fault proxies; DynamoDB:
	// dynalite (behind its own) or memdb.
	env, err := localenv.Start(ctx, localenv.Options{PostbackToken: token, NoDynamo: !dynalite, InProcess: testing.Short(), Servers: &servers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	hs.env, hs.sqsFaults, hs.secretsFaults = env, env.SQSFaults, env.SecretsFaults
	secrets, queue, events := env.SecretsManager(), env.SQSClient(), env.EventsQueueURL
	if dynalite {
		hs.store = store.New(env.DynamoDB(), localenv.Table, 0)
		hs.throttle = func() { env.Proxy.ThrottleFor(time.Hour) }
	} else {
		db := memdb.New()
		if err := store.CreateTable(ctx, db, localenv.Table); err != nil {
			t.Fatal(err)
		}
		hs.store = store.New(db, localenv.Table, 0)
		hs.throttle = func() {
			db.Fail(func(string, string) error {
				return &types.ProvisionedThroughputExceededException{Message: aws.String("throttled")}
			})
		}
	}
	hs.h = NewHandler(Deps{
		Tokens:  secret.New(secrets, localenv.SecretID, time.Minute, secret.PostbackToken),
		Store:   hs.store,
		Events:  delivery.NewPublisher(queue, events),
		Log:     applog.New(hs.logs),
		Metrics: emf.New(hs.logs, "mmsgate", map[string]string{"Function": "postback"}),
	})
	hs.h.waits = nil // answer 503 at once; TestShortWait covers the pauses
	hs.h.now = hs.now
	// As FromEnv reads an unset OPTOUT_KEYWORDS and OPTIN_KEYWORDS.
	hs.h.d.Keywords = keyword.Defaults()
	hs.store.SetClock(hs.now)
	return hs
}

// drain removes and decodes every delivery event, oldest first.
func (hs *harness) drain() ([]delivery.Event, error) { return hs.env.DrainEvents() }
