package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/dynalite"
	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/memdb"
	"github.com/mmsgate/mmsgate/pkg/store"
)

// dynamo is the part of a DynamoDB a test reads raw items through.
type dynamo interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

var (
	_ dynamo = (*memdb.DB)(nil)
	_ dynamo = (*dynamodb.Client)(nil)
)

// backend is a store on one DynamoDB, with that DynamoDB.
type backend struct {
	name string
	st   *store.Store
	db   dynamo
}

// backends returns a store on memdb, and one on dynalite unless -short (or
// dynalite is not installed): the state machine lives in pkg/store's
// conditional writes, so the same test must pass on both.
func backends(t *testing.T) []backend {
	t.Helper()
	db := memdb.New()
	if err := store.CreateTable(context.Background(), db, localenv.Table); err != nil {
		t.Fatal(err)
	}
	bs := []backend{{name: "memdb", st: store.New(db, localenv.Table, 0), db: db}}
	if testing.Short() {
		return bs
	}
	root, err := dynalite.Root()
	if err == nil {
		_, err = os.Stat(filepath.Join(root, "node_modules", "dynalite", "cli.js"))
	}
	if err != nil {
		t.Logf("dynalite not installed (%v): memdb only", err)
		return bs
	}
	env, err := localenv.Start(context.Background(), localenv.Options{Servers: &servers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	c := env.DynamoDB()
	return append(bs, backend{name: "dynalite", st: store.New(c, localenv.Table, 0), db: c})
}

// TestBackendsWriteTheSameItems runs store calls on every backend at one
// fixed time and requires identical raw items: the outcome and the bytes
// pkg/store leaves in the table do not depend on the backend.
func TestBackendsWriteTheSameItems(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	items := map[string]map[string]types.AttributeValue{}
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			b.st.SetClock(func() time.Time { return at })
			if err := b.st.Link(ctx, "T1", "order-1", nil); err != nil {
				t.Fatalf("Link = %v", err)
			}
			if err := b.st.Link(ctx, "T1", "order-1", nil); err != nil {
				t.Fatalf("Link again = %v", err)
			}
			if err := b.st.Link(ctx, "T1", "order-2", nil); !errors.Is(err, store.ErrLinkConflict) {
				t.Fatalf("Link to another id = %v, want ErrLinkConflict", err)
			}
			out, err := b.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(localenv.Table),
				Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "trk#T1"}}, ConsistentRead: aws.Bool(true)})
			if err != nil || out.Item == nil {
				t.Fatalf("GetItem(trk#T1) = %v, %v", out, err)
			}
			items[b.name] = out.Item
		})
	}
	want := map[string]string{"pk": "trk#T1", "id": "order-1", "exp": "1769915045"} // at + DefaultTTL, in Unix seconds
	for name, it := range items {
		got := map[string]string{}
		for k, v := range it {
			switch v := v.(type) {
			case *types.AttributeValueMemberS:
				got[k] = v.Value
			case *types.AttributeValueMemberN:
				got[k] = v.Value
			default:
				t.Errorf("%s: attribute %s is a %T", name, k, v)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: trk#T1 (-want +got):\n%s", name, diff)
		}
	}
}
