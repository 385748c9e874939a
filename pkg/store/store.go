// Package store keeps mmsgate's records in one DynamoDB table (pk only):
//
//   - msg#<id>: the send request's idempotency record. A conditional write
//     claims it with a lease that ends with the invocation's deadline;
//     accepted and rejected are final, so one id is sent at most once.
//   - trk#<trackingId>: the tracking id → id join written at acceptance, and
//     the postbacks' de-duplication and state, changed only by conditional
//     updates.
//
// A second item rather than a GSI: a GSI is eventually consistent, and the
// first postback can arrive milliseconds after acceptance.
package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// DefaultTTL is how long records are kept (the table's TTL attribute exp).
const DefaultTTL = 30 * 24 * time.Hour

// TTLFromDays reads MESSAGES_TTL_DAYS; "" gives DefaultTTL.
func TTLFromDays(v string) (time.Duration, error) {
	if v == "" {
		return DefaultTTL, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return DefaultTTL, fmt.Errorf("MESSAGES_TTL_DAYS=%q: want a whole number of days ≥ 1", v)
	}
	return time.Duration(n) * 24 * time.Hour, nil
}

// Message states.
const (
	StateInProgress = "INPROGRESS"
	StateRetry      = "RETRY"
	StateAccepted   = "ACCEPTED"
	StateRejected   = "REJECTED"
)

type dynamo interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

// Store is safe for concurrent use.
type Store struct {
	db    dynamo
	table string
	ttl   time.Duration
	now   func() time.Time
}

// New returns a store on table (MESSAGES_TABLE).
func New(db dynamo, table string, ttl time.Duration) *Store {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Store{db: db, table: table, ttl: ttl, now: time.Now}
}

// Message is the msg#<id> record.
type Message struct {
	ID           string
	State        string
	Owner        string
	LeaseUntil   time.Time
	Attempts     int
	TrackingID   string
	Code         string
	Error        string
	To, From     string
	MMSID        string
	PendingEvent string // an event recorded but not yet published
	Created      string
}

// Final reports whether the message was accepted or rejected for good.
func (m *Message) Final() bool { return m.State == StateAccepted || m.State == StateRejected }

func msgKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": s("msg#" + id)}
}

func trkKey(tid string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": s("trk#" + tid)}
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func (st *Store) stamp() string { return st.now().UTC().Format(time.RFC3339Nano) }
func (st *Store) exp() types.AttributeValue {
	return n(st.now().Add(st.ttl).Unix())
}

// names maps #x to x for every attribute an expression uses.
var names = map[string]string{
	"#pk": "pk", "#st": "st", "#lease": "leaseMs", "#owner": "ownerId", "#att": "attempts", "#created": "created",
	"#upd": "updated", "#exp": "exp", "#trk": "trackingId", "#code": "code", "#err": "error", "#to": "to",
	"#from": "from", "#mms": "mmsId", "#evt": "pendingEvent", "#acc": "acceptedAt", "#id": "id",
}

func exprNames(keys ...string) map[string]string {
	m := make(map[string]string, len(keys))
	for _, k := range keys {
		m[k] = names[k]
	}
	return m
}

// Claim takes msg#id for owner until lease. It succeeds for a new id, one
// released for a retry, or one whose earlier lease ran out (that sender
// died). Otherwise it returns the existing record: final (a duplicate) or
// in progress elsewhere.
func (st *Store) Claim(ctx context.Context, id, owner string, lease time.Time) (claimed bool, existing *Message, err error) {
	now := st.now()
	_, err = st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(st.table),
		Key:       msgKey(id),
		UpdateExpression: aws.String("SET #st = :inprog, #lease = :lease, #owner = :owner, #created = if_not_exists(#created, :now), " +
			"#upd = :now, #exp = :exp ADD #att :one"),
		ConditionExpression:      aws.String("attribute_not_exists(#pk) OR #st = :retry OR (#st = :inprog AND #lease < :nowms)"),
		ExpressionAttributeNames: exprNames("#pk", "#st", "#lease", "#owner", "#created", "#upd", "#exp", "#att"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":inprog": s(StateInProgress), ":retry": s(StateRetry), ":lease": n(lease.UnixMilli()), ":owner": s(owner),
			":now": s(st.stamp()), ":exp": st.exp(), ":one": n(1), ":nowms": n(now.UnixMilli()),
		},
	})
	if err == nil {
		return true, nil, nil
	}
	if !conditionFailed(err) {
		return false, nil, unavailable("store.Claim", err)
	}
	m, err := st.Get(ctx, id)
	if err != nil {
		return false, nil, err
	}
	if m == nil { // deleted between the two calls (TTL): try once more later
		return false, &Message{ID: id, State: StateInProgress, LeaseUntil: now.Add(time.Second)}, nil
	}
	return false, m, nil
}

// Get reads msg#id (consistent read); nil when absent.
func (st *Store) Get(ctx context.Context, id string) (*Message, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: msgKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, unavailable("store.Get", err)
	}
	if out.Item == nil {
		return nil, nil
	}
	it := out.Item
	m := &Message{ID: id, State: str(it, "st"), Owner: str(it, "ownerId"), TrackingID: str(it, "trackingId"),
		Code: str(it, "code"), Error: str(it, "error"), To: str(it, "to"), From: str(it, "from"), MMSID: str(it, "mmsId"),
		PendingEvent: str(it, "pendingEvent"), Created: str(it, "created")}
	m.Attempts = int(num(it, "attempts"))
	if ms := num(it, "leaseMs"); ms > 0 {
		m.LeaseUntil = time.UnixMilli(ms)
	}
	return m, nil
}

// Outcome is what Accept and Reject record.
type Outcome struct {
	TrackingID string
	Code       string
	Error      string
	To, From   string
	MMSID      string
}

// Accept records msg#id as accepted with its tracking id and marks the
// accepted event as pending until EventSent. The claim's lease is kept: the
// pending event is the claimant's to publish until the lease ends (or
// ReleaseEvent), so that a duplicate delivery does not publish it as well.
func (st *Store) Accept(ctx context.Context, id string, o Outcome) error {
	return st.final(ctx, "store.Accept", id, StateAccepted, "accepted", o)
}

// Reject records msg#id as rejected for good, the rejected event pending.
func (st *Store) Reject(ctx context.Context, id string, o Outcome) error {
	return st.final(ctx, "store.Reject", id, StateRejected, "rejected", o)
}

func (st *Store) final(ctx context.Context, op, id, state, event string, o Outcome) error {
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(st.table),
		Key:       msgKey(id),
		UpdateExpression: aws.String("SET #st = :st, #trk = :trk, #code = :code, #err = :err, #to = :to, #from = :from, " +
			"#mms = :mms, #evt = :evt, #acc = :now, #upd = :now, #exp = :exp, #created = if_not_exists(#created, :now)"),
		ExpressionAttributeNames: exprNames("#st", "#trk", "#code", "#err", "#to", "#from", "#mms", "#evt", "#acc", "#upd", "#exp", "#created"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":st": s(state), ":trk": s(o.TrackingID), ":code": s(o.Code), ":err": s(o.Error), ":to": s(o.To),
			":from": s(o.From), ":mms": s(o.MMSID), ":evt": s(event), ":now": s(st.stamp()), ":exp": st.exp(),
		},
	})
	if err != nil {
		return unavailable(op, err)
	}
	return nil
}

// EventSent clears the pending event of msg#id.
func (st *Store) EventSent(ctx context.Context, id string) error {
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(st.table),
		Key:                      msgKey(id),
		UpdateExpression:         aws.String("REMOVE #evt"),
		ExpressionAttributeNames: exprNames("#evt"),
	})
	if err != nil {
		return unavailable("store.EventSent", err)
	}
	return nil
}

// ReleaseEvent hands a pending event over to the next delivery at once
// (its claimant could not publish it).
func (st *Store) ReleaseEvent(ctx context.Context, id string) error {
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(st.table),
		Key:                      msgKey(id),
		UpdateExpression:         aws.String("REMOVE #lease"),
		ExpressionAttributeNames: exprNames("#lease"),
	})
	if err != nil {
		return unavailable("store.ReleaseEvent", err)
	}
	return nil
}

// Release gives the claim back after a transient failure, so that the next
// delivery of the message can claim it at once.
func (st *Store) Release(ctx context.Context, id, owner, code string) error {
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(st.table),
		Key:                      msgKey(id),
		UpdateExpression:         aws.String("SET #st = :retry, #code = :code, #upd = :now REMOVE #lease"),
		ConditionExpression:      aws.String("#owner = :owner AND #st = :inprog"),
		ExpressionAttributeNames: exprNames("#st", "#code", "#upd", "#lease", "#owner"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":retry": s(StateRetry), ":code": s(code), ":now": s(st.stamp()), ":owner": s(owner), ":inprog": s(StateInProgress),
		},
	})
	if err != nil && !conditionFailed(err) {
		return unavailable("store.Release", err)
	}
	return nil
}

// Link records trackingID → id for the postback function.
func (st *Store) Link(ctx context.Context, trackingID, id string) error {
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(st.table),
		Key:                      trkKey(trackingID),
		UpdateExpression:         aws.String("SET #id = :id, #exp = if_not_exists(#exp, :exp)"),
		ExpressionAttributeNames: exprNames("#id", "#exp"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":id": s(id), ":exp": st.exp(),
		},
	})
	if err != nil {
		return unavailable("store.Link", err)
	}
	return nil
}

func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

func unavailable(op string, err error) *apperr.Error {
	return &apperr.Error{Code: apperr.CodeUnavailable, Class: apperr.Retry, Op: op, Message: "DynamoDB call failed", Err: err}
}

func str(it map[string]types.AttributeValue, k string) string {
	if v, ok := it[k].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func num(it map[string]types.AttributeValue, k string) int64 {
	if v, ok := it[k].(*types.AttributeValueMemberN); ok {
		x, _ := strconv.ParseInt(v.Value, 10, 64)
		return x
	}
	return 0
}

// SetClock replaces the store's clock (tests that need a lease to run out).
func (st *Store) SetClock(now func() time.Time) { st.now = now }
