package store

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
)

// Decision is what to do with one postback.
type Decision int

const (
	// Emit: this invocation holds the tracking id's emitter slot; publish
	// the event, then call PostbackDone (or PostbackRelease on failure).
	Emit Decision = iota
	// History: recorded, but it does not advance the state: no event.
	History
	// Duplicate: this postback was processed already.
	Duplicate
	// Busy: this postback, or a lower one of the same tracking id, is
	// being emitted elsewhere right now.
	Busy
)

func (d Decision) String() string {
	return [...]string{"emit", "history", "duplicate", "busy"}[d]
}

// Joined is what the tracking item says of the message.
type Joined struct {
	ID string // the request id, "" when no sender recorded this tracking id
	// FirstSeen is when the first postback of this tracking id arrived.
	FirstSeen time.Time
	// Settled: msg#ID was seen final with no pending event, so no send
	// event can still have to go out before this postback's.
	Settled bool
	// About is what the settled record tells every event (kept on trk#
	// when it settled, so later postbacks need not read msg#); zero when
	// not settled.
	About delivery.About
	// Metadata is the request's metadata as Link kept it (nil when none,
	// or not linked yet).
	Metadata map[string]string
}

// The tracking item trk#<T> holds, besides id (Link):
//
//   - rank, state: the highest state emitted so far (sent 1, final 2);
//   - p_<key>: the postback advanced the state, its event not yet confirmed;
//   - d_<key>: the postback is done (published, or history);
//   - holder, hold: the one emitter slot of the tracking id (owner and the
//     end of its hold, ms). One postback of a tracking id is emitted at a
//     time, so two events of one tracking id never race each other to the
//     queue;
//   - firstMs: when the first postback arrived (the join window, in the doc of
//     pkg/postback);
//   - settled: the id whose msg# record was seen final with no pending
//     event (a final record never gets one again), so later postbacks skip
//     reading it; about: what that record tells every event (aboutItem);
//   - history: every postback key in arrival order.
var trkNames = map[string]string{"#rank": "rank", "#state": "state", "#exp": "exp", "#upd": "updated", "#h": "history",
	"#holder": "holder", "#hold": "hold", "#first": "firstMs", "#settled": "settled", "#about": "about", "#md": mdAttr}

// Postback decides, atomically, what one postback does. key identifies
// the postback (code, status, timestamp); rank orders states (sent 1,
// final 2) so that a state never moves back. owner holds the tracking id's
// emitter slot until hold when the answer is Emit.
//
// The conditional updates, tried in turn: advance the state (Emit, only
// while no one else holds the slot); resume an advance whose event was
// never confirmed (Emit again, only while its rank is still the item's:
// once a higher state was reached it is history, never published after
// it); retire such a superseded advance (History); or record the postback
// as history (History, only when the item's rank is at least its own). A
// consistent read tells Duplicate from Busy.
func (st *Store) Postback(ctx context.Context, trackingID, key string, rank int, state, owner string, hold time.Time) (Decision, Joined, error) {
	const op = "store.Postback"
	if !Keyable(trackingID) {
		return 0, Joined{}, &apperr.Error{Code: apperr.CodeMalformed, Class: apperr.Permanent, Op: op, Message: "tracking id too long to key"}
	}
	now := st.now()
	nm := postbackNames(key)
	vals := map[string]types.AttributeValue{
		":r": n(int64(rank)), ":state": s(state), ":hold": n(hold.UnixMilli()), ":owner": s(owner), ":one": n(1),
		":exp": n(st.unlinkedExp()), ":now": s(st.stamp()), ":nowms": n(now.UnixMilli()), // Link extends it
		":h": &types.AttributeValueMemberL{Value: []types.AttributeValue{s(key)}}, ":empty": &types.AttributeValueMemberL{},
	}
	const (
		// ours too: a write whose answer was lost, retried by the SDK or by
		// this invocation, finds the slot it already holds.
		free   = "(attribute_not_exists(#hold) OR #hold < :nowms OR #holder = :owner)"
		common = "#first = if_not_exists(#first, :nowms), #exp = if_not_exists(#exp, :exp), #upd = :now"
		hist   = "#h = list_append(if_not_exists(#h, :empty), :h)"
	)
	attempts := []struct {
		update, cond string
		decision     Decision
	}{
		{"SET #rank = :r, #state = :state, #p = :one, #holder = :owner, #hold = :hold, " + common + ", " + hist,
			"attribute_not_exists(#d) AND attribute_not_exists(#p) AND (attribute_not_exists(#rank) OR #rank < :r) AND " + free, Emit},
		{"SET #holder = :owner, #hold = :hold, " + common,
			"attribute_exists(#p) AND attribute_not_exists(#d) AND #rank = :r AND " + free, Emit},
		{"SET #d = :now, " + common + " REMOVE #p",
			"attribute_exists(#p) AND attribute_not_exists(#d) AND #rank > :r", History},
		{"SET #d = :now, " + common + ", " + hist,
			"attribute_not_exists(#d) AND attribute_not_exists(#p) AND #rank >= :r", History},
	}
	for _, a := range attempts {
		out, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(st.table), Key: trkKey(trackingID),
			UpdateExpression: aws.String(a.update), ConditionExpression: aws.String(a.cond),
			ExpressionAttributeNames: used(nm, a.update, a.cond), ExpressionAttributeValues: usedVals(vals, a.update, a.cond),
			ReturnValues: types.ReturnValueAllNew,
		})
		if err == nil {
			return a.decision, joined(out.Attributes), nil
		}
		if !conditionFailed(err) {
			return 0, Joined{}, dynamoError(op, err)
		}
	}
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: trkKey(trackingID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, Joined{}, dynamoError(op, err)
	}
	if _, done := out.Item["d_"+key]; done {
		return Duplicate, joined(out.Item), nil
	}
	return Busy, joined(out.Item), nil
}

func postbackNames(key string) map[string]string {
	nm := map[string]string{"#d": "d_" + key, "#p": "p_" + key}
	for k, v := range trkNames {
		nm[k] = v
	}
	return nm
}

func joined(it map[string]types.AttributeValue) Joined {
	j := Joined{ID: str(it, "id"), FirstSeen: millis(num(it, "firstMs")), Metadata: mdOf(it)}
	j.Settled = j.ID != "" && str(it, "settled") == j.ID
	if j.Settled {
		j.About = aboutOf(it, "about").Or(delivery.About{ID: j.ID, Metadata: j.Metadata})
	}
	return j
}

// PostbackDone marks the postback's event as published and gives owner's
// emitter slot back. settled, when its ID is not "", records that
// msg#<settled.ID> is final with no pending event, and what it tells every
// event (see Joined.Settled, Joined.About).
func (st *Store) PostbackDone(ctx context.Context, trackingID, key, owner string, settled delivery.About) error {
	const op = "store.PostbackDone"
	nm := postbackNames(key)
	vals := map[string]types.AttributeValue{":now": s(st.stamp()), ":owner": s(owner), ":settled": s(settled.ID), ":about": aboutItem(settled)}
	upd := "SET #d = :now"
	if settled.ID != "" {
		upd += ", #settled = :settled, #about = :about"
		if md := mdJSON(settled.Metadata); md != "" { // Link keeps it; this only fills a link made without it
			upd += ", #md = if_not_exists(#md, :md)"
			vals[":md"] = s(md)
		}
	}
	// The slot is released only when it is still ours (a retry may hold it
	// now, after our hold ran out).
	for _, a := range []struct{ update, cond string }{
		{upd + " REMOVE #p, #holder, #hold", "#holder = :owner"},
		{upd + " REMOVE #p", ""},
	} {
		in := &dynamodb.UpdateItemInput{
			TableName: aws.String(st.table), Key: trkKey(trackingID), UpdateExpression: aws.String(a.update),
			ExpressionAttributeNames: used(nm, a.update, a.cond), ExpressionAttributeValues: usedVals(vals, a.update, a.cond),
		}
		if a.cond != "" {
			in.ConditionExpression = aws.String(a.cond)
		}
		_, err := st.db.UpdateItem(ctx, in)
		if err == nil {
			return nil
		}
		if !conditionFailed(err) {
			return dynamoError(op, err)
		}
	}
	return nil
}

// PostbackRelease gives owner's emitter slot of trackingID back at once,
// the postback's advance left pending: an invocation that answers 5xx
// calls it so that a retry right after can resume (docs/postback.md).
func (st *Store) PostbackRelease(ctx context.Context, trackingID, owner string) error {
	if !Keyable(trackingID) {
		return nil
	}
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(st.table), Key: trkKey(trackingID),
		UpdateExpression:          aws.String("REMOVE #holder, #hold"),
		ConditionExpression:       aws.String("#holder = :owner"),
		ExpressionAttributeNames:  map[string]string{"#holder": "holder", "#hold": "hold"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":owner": s(owner)},
	})
	if err != nil && !conditionFailed(err) {
		return dynamoError("store.PostbackRelease", err)
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
