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

// supNames maps #x to x for every attribute of sup#<key>.
var supNames = map[string]string{"#code": "code", "#id": "id", "#at": "atMs", "#until": "untilMs", "#exp": "exp"}

// Suppression is sup#<key>: a number (or number and campaign) that Skycore
// refused for good for a number-level reason. Requests to it are rejected
// locally until Until, with no Skycore call.
type Suppression struct {
	Key   string // the number, or number#campaignRef
	Code  string // Skycore's code (E110, E114, ...)
	ID    string // the request whose refusal made it
	At    time.Time
	Until time.Time
}

// SuppressionKey is the item key of a number, or of a number within one
// campaign when campaign is not "".
func SuppressionKey(to, campaign string) string {
	if campaign == "" {
		return to
	}
	return to + "#" + campaign
}

func supKey(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": s("sup#" + key)}
}

// Suppressed returns the live suppression of key, or nil.
func (st *Store) Suppressed(ctx context.Context, key string) (*Suppression, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: supKey(key)})
	if err != nil {
		return nil, dynamoError("store.Suppressed", err)
	}
	if out.Item == nil {
		return nil, nil
	}
	sup := decodeSuppression(key, out.Item)
	if !sup.Until.After(st.now()) { // lifted, or expired before TTL removed it
		return nil, nil
	}
	return sup, nil
}

func decodeSuppression(key string, it map[string]types.AttributeValue) *Suppression {
	return &Suppression{Key: key, Code: str(it, "code"), ID: str(it, "id"), At: millis(num(it, "atMs")), Until: millis(num(it, "untilMs"))}
}

// Suppress records that key was refused with code by request id, for ttl.
func (st *Store) Suppress(ctx context.Context, key, code, id string, ttl time.Duration) error {
	now := st.now()
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(st.table), Key: supKey(key),
		UpdateExpression:         aws.String("SET #code = :code, #id = :id, #at = :at, #until = :until, #exp = :exp"),
		ExpressionAttributeNames: supNames,
		ExpressionAttributeValues: map[string]types.AttributeValue{":code": s(code), ":id": s(id), ":at": n(now.UnixMilli()),
			":until": n(now.Add(ttl).UnixMilli()), ":exp": n(now.Add(ttl).Add(24 * time.Hour).Unix())},
	})
	if err != nil {
		return dynamoError("store.Suppress", err)
	}
	return nil
}

// Lift ends key's suppression now; false when there was none.
func (st *Store) Lift(ctx context.Context, key string) (bool, error) {
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(st.table), Key: supKey(key),
		UpdateExpression:          aws.String("SET #until = :now"),
		ConditionExpression:       aws.String("attribute_exists(#until) AND #until > :now"),
		ExpressionAttributeNames:  map[string]string{"#until": supNames["#until"]},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": n(st.now().UnixMilli())},
	})
	if conditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, dynamoError("store.Lift", err)
	}
	return true, nil
}

type scanner interface {
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
}

// Suppressions lists the live suppressions, for operators: a Scan, which
// the functions never do (their roles cannot).
func (st *Store) Suppressions(ctx context.Context, db scanner) ([]Suppression, error) {
	var out []Suppression
	in := &dynamodb.ScanInput{TableName: aws.String(st.table), FilterExpression: aws.String("begins_with(#pk, :sup)"),
		ExpressionAttributeNames: map[string]string{"#pk": "pk"}, ExpressionAttributeValues: map[string]types.AttributeValue{":sup": s("sup#")}}
	for {
		page, err := db.Scan(ctx, in)
		if err != nil {
			return nil, dynamoError("store.Suppressions", err)
		}
		for _, it := range page.Items {
			sup := decodeSuppression(strings.TrimPrefix(str(it, "pk"), "sup#"), it)
			if sup.Until.After(st.now()) {
				out = append(out, *sup)
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}
