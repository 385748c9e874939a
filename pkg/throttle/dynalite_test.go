package throttle

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/mmsgate/mmsgate/internal/dynalite"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// dynaliteTable starts dynalite (skipped with -short, or when it is not
// installed) with the messages table.
func dynaliteTable(t *testing.T) *dynamodb.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("dynalite: not with -short")
	}
	root, err := dynalite.Root()
	if err == nil {
		_, err = os.Stat(filepath.Join(root, "node_modules", "dynalite", "cli.js"))
	}
	if err != nil {
		t.Skipf("dynalite not installed: %v", err)
	}
	ctx := context.Background()
	srv, err := dynalite.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "local", SecretAccessKey: "local"}, nil
		})})
	if err := store.CreateTable(ctx, c, table); err != nil {
		t.Fatal(err)
	}
	return c
}

// The same expressions on dynalite, real clock: four instances racing get
// distinct slots that never exceed the limit in any second, and an E113
// cut written by one is read by the others.
func TestOnDynalite(t *testing.T) {
	c := dynaliteTable(t)
	const limit = 40.0
	var mu sync.Mutex
	var slots []time.Time
	var ls []*Limiter
	for range 4 {
		ls = append(ls, New(c, table, Options{Limit: limit}))
	}
	// Cancel, not a deadline: the callers stop asking at 1.5 s, but a
	// deadline would also make the limiter refuse slots within MinCall of it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(1500*time.Millisecond, cancel)
	var wg sync.WaitGroup
	for _, l := range ls {
		for range 5 { // 20 callers for 1.5 s: about twice the account's rate asked
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					s, err := l.Reserve(ctx, Transactional)
					if err != nil {
						return
					}
					mu.Lock()
					slots = append(slots, s)
					mu.Unlock()
					time.Sleep(time.Until(s) + 50*time.Millisecond)
				}
			}()
		}
	}
	wg.Wait()
	sortTimes(slots)
	for i := 1; i < len(slots); i++ {
		if slots[i].Equal(slots[i-1]) {
			t.Fatalf("slot %s granted twice", slots[i])
		}
	}
	if got := maxInWindow(slots, time.Second+DefaultOptions().Grace); got > limit {
		t.Errorf("%d slots in one second, over %v", got, limit)
	}
	if len(slots) < int(limit) {
		t.Errorf("only %d slots in 1.5 s at %v/s", len(slots), limit)
	}
	if err := ls[0].Penalize(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ls[1].Penalize(context.Background()); err != nil { // within the cooldown: no second cut
		t.Fatal(err)
	}
	// dynalite does not return the item of a failed condition (DynamoDB
	// does): the loser reads the cut at its next lease.
	if _, err := ls[1].Reserve(context.Background(), Bulk); err != nil {
		t.Fatal(err)
	}
	if r := ls[1].Rate(); r > 0.75*target*limit || r < 0.65*target*limit {
		t.Errorf("rate after one cut = %v, want about %v (one cut, read back by the loser)", r, 0.7*target*limit)
	}
	var st Stats
	for _, l := range ls {
		s := l.Stats()
		st.Leases += s.Leases
		st.Granted += s.Granted
		st.Contended += s.Contended
		st.Cuts += s.Cuts
	}
	if st.Cuts != 1 {
		t.Errorf("%d cuts for one burst", st.Cuts)
	}
	t.Logf("dynalite: %d slots, %d leases, %d lost conditions", st.Granted, st.Leases, st.Contended)
}

func sortTimes(s []time.Time) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].Before(s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
