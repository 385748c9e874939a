package store

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Tracking is what trk#<trackingId> says, for operators (mmsgate status).
type Tracking struct {
	TrackingID string
	ID         string // the request, "" when none was linked
	State      string // the highest state emitted (sent, delivered, ...)
	Rank       int
	FirstSeen  time.Time
	Postbacks  []PostbackStep // every postback recorded, in arrival order
}

// PostbackStep is one postback of a tracking id.
type PostbackStep struct {
	Key     string // CODE_hash
	Code    string
	Done    string // when it was settled (published or history); "" while pending
	Pending bool   // it advanced the state and its event is not confirmed yet
}

// GetTracking reads trk#trackingID (consistent read); nil when absent.
func (st *Store) GetTracking(ctx context.Context, trackingID string) (*Tracking, error) {
	if !Keyable(trackingID) {
		return nil, nil
	}
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: trkKey(trackingID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, dynamoError("store.GetTracking", err)
	}
	if out.Item == nil {
		return nil, nil
	}
	it := out.Item
	t := &Tracking{TrackingID: trackingID, ID: str(it, "id"), State: str(it, "state"), Rank: int(num(it, "rank")), FirstSeen: millis(num(it, "firstMs"))}
	seen := map[string]bool{}
	add := func(key string) {
		if seen[key] {
			return
		}
		seen[key] = true
		code, _, _ := strings.Cut(key, "_")
		_, pending := it["p_"+key]
		t.Postbacks = append(t.Postbacks, PostbackStep{Key: key, Code: code, Done: str(it, "d_"+key), Pending: pending})
	}
	if l, ok := it["history"].(*types.AttributeValueMemberL); ok {
		for _, v := range l.Value {
			if sv, ok := v.(*types.AttributeValueMemberS); ok {
				add(sv.Value)
			}
		}
	}
	// Keys that are not in the history list (older items), in name order.
	var rest []string
	for k := range it {
		if key, ok := strings.CutPrefix(k, "d_"); ok {
			rest = append(rest, key)
		} else if key, ok := strings.CutPrefix(k, "p_"); ok {
			rest = append(rest, key)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		add(k)
	}
	return t, nil
}
