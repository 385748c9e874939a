package store

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// Decision is what to do with one postback.
type Decision int

const (
	// Emit: publish the event, then call PostbackDone.
	Emit Decision = iota
	// History: recorded, but it does not advance the state: no event.
	History
	// Duplicate: this postback was processed already.
	Duplicate
	// Busy: the same postback is being processed elsewhere right now.
	Busy
)

func (d Decision) String() string {
	return [...]string{"emit", "history", "duplicate", "busy"}[d]
}

// Joined is what the tracking item says of the message.
type Joined struct {
	ID string // the request id, "" when no sender recorded this tracking id
}

// Postback decides, atomically, what one postback does. key identifies
// the postback (code, status, timestamp); rank orders states (sent 1,
// final 2) so that a state never moves back. lease bounds how long an
// emitter holds the postback before a retry may emit it instead.
//
// The three conditional updates: advance the state (Emit); resume an
// advance whose event was never confirmed (Emit again); or record it as
// history (History). A consistent read tells Duplicate from Busy.
func (st *Store) Postback(ctx context.Context, trackingID, key string, rank int, state string, lease time.Duration) (Decision, Joined, error) {
	const op = "store.Postback"
	now := st.now()
	d, p, c, h := "#d", "#p", "#c", "#h"
	nm := map[string]string{d: "d_" + key, p: "p_" + key, c: "c_" + key, h: "history", "#rank": "rank", "#state": "state",
		"#exp": "exp", "#upd": "updated"}
	vals := map[string]types.AttributeValue{
		":r": n(int64(rank)), ":state": s(state), ":lease": n(now.Add(lease).UnixMilli()), ":one": n(1),
		":exp": st.exp(), ":now": s(st.stamp()), ":nowms": n(now.UnixMilli()),
		":h": &types.AttributeValueMemberL{Value: []types.AttributeValue{s(key)}}, ":empty": &types.AttributeValueMemberL{},
	}
	attempts := []struct {
		update, cond string
		decision     Decision
	}{
		{"SET #rank = :r, #state = :state, #c = :lease, #p = :one, #exp = if_not_exists(#exp, :exp), #upd = :now, #h = list_append(if_not_exists(#h, :empty), :h)",
			"attribute_not_exists(#d) AND attribute_not_exists(#p) AND (attribute_not_exists(#rank) OR #rank < :r)", Emit},
		{"SET #c = :lease, #upd = :now",
			"attribute_exists(#p) AND attribute_not_exists(#d) AND (attribute_not_exists(#c) OR #c < :nowms)", Emit},
		{"SET #d = :now, #exp = if_not_exists(#exp, :exp), #upd = :now, #h = list_append(if_not_exists(#h, :empty), :h)",
			"attribute_not_exists(#d) AND attribute_not_exists(#p)", History},
	}
	for _, a := range attempts {
		in := &dynamodb.UpdateItemInput{
			TableName: aws.String(st.table), Key: trkKey(trackingID),
			UpdateExpression: aws.String(a.update), ConditionExpression: aws.String(a.cond),
			ExpressionAttributeNames: used(nm, a.update, a.cond), ExpressionAttributeValues: usedVals(vals, a.update, a.cond),
			ReturnValues: types.ReturnValueAllNew,
		}
		out, err := st.db.UpdateItem(ctx, in)
		if err == nil {
			return a.decision, Joined{ID: str(out.Attributes, "id")}, nil
		}
		if !conditionFailed(err) {
			return 0, Joined{}, &apperr.Error{Code: apperr.CodeUnavailable, Class: apperr.Retry, Op: op, Message: "DynamoDB call failed", Err: err}
		}
	}
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: trkKey(trackingID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, Joined{}, &apperr.Error{Code: apperr.CodeUnavailable, Class: apperr.Retry, Op: op, Message: "DynamoDB call failed", Err: err}
	}
	j := Joined{ID: str(out.Item, "id")}
	if _, done := out.Item["d_"+key]; done {
		return Duplicate, j, nil
	}
	return Busy, j, nil
}

// PostbackDone marks the postback's event as published.
func (st *Store) PostbackDone(ctx context.Context, trackingID, key string) error {
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(st.table), Key: trkKey(trackingID),
		UpdateExpression:          aws.String("SET #d = :now REMOVE #p, #c"),
		ExpressionAttributeNames:  map[string]string{"#d": "d_" + key, "#p": "p_" + key, "#c": "c_" + key},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": s(st.stamp())},
	})
	if err != nil {
		return &apperr.Error{Code: apperr.CodeUnavailable, Class: apperr.Retry, Op: "store.PostbackDone", Message: "DynamoDB call failed", Err: err}
	}
	return nil
}

// used keeps the names an expression mentions (DynamoDB rejects unused ones).
func used(all map[string]string, exprs ...string) map[string]string {
	out := map[string]string{}
	for k, v := range all {
		for _, e := range exprs {
			if contains(e, k) {
				out[k] = v
			}
		}
	}
	return out
}

func usedVals(all map[string]types.AttributeValue, exprs ...string) map[string]types.AttributeValue {
	out := map[string]types.AttributeValue{}
	for k, v := range all {
		for _, e := range exprs {
			if contains(e, k) {
				out[k] = v
			}
		}
	}
	return out
}

// contains finds the placeholder k as a whole token (":now" not in ":nowms").
func contains(expr, k string) bool {
	for i := 0; i+len(k) <= len(expr); i++ {
		if expr[i:i+len(k)] == k {
			end := i + len(k)
			if end == len(expr) || !isNameByte(expr[end]) {
				return true
			}
		}
	}
	return false
}

func isNameByte(b byte) bool {
	return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}
