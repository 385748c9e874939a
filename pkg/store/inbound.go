package store

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// Inbound (MO) messages are de-duplicated on in#<key>, key being the
// message's TRANSACTIONID / TRACKINGID with its code (skycore.Inbound's
// DedupKey): Skycore retries a postback it got no 200 for, and every copy
// must give one inbound event and at most one optout / optin.
//
// The postback function, per inbound postback:
//
//	ClaimInbound          → InboundNew: go on; InboundDuplicate: 200, nothing;
//	                        InboundBusy: 503 (another invocation holds it)
//	the suppression change (OptOut / OptIn), then each event not in
//	Published: publish it, InboundPublished(kind)
//	InboundDone           → 200
//	on any failure: ReleaseInbound, 5xx (Skycore retries; the retry
//	publishes only what is not marked published)
//
// The suppression change comes before the events, so that an application
// that sees optout knows requests to the number are already refused.

// InboundDecision is what ClaimInbound found.
type InboundDecision int

const (
	InboundNew       InboundDecision = iota // claimed: record and publish what is not published yet
	InboundDuplicate                        // done before: answer 200, publish nothing
	InboundBusy                             // another invocation holds it: answer 503
)

func (d InboundDecision) String() string {
	switch d {
	case InboundNew:
		return "new"
	case InboundDuplicate:
		return "duplicate"
	}
	return "busy"
}

// InboundClaim is ClaimInbound's answer.
type InboundClaim struct {
	Decision  InboundDecision
	Published []string // event kinds an earlier attempt published (InboundNew only), sorted
}

func inKey(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": s("in#" + key)}
}

// InboundKeyable reports whether an inbound key fits in a key (in#<key>);
// skycore.Inbound.DedupKey(MaxInboundKey) always does.
func InboundKeyable(key string) bool { return key != "" && len("in#")+len(key) <= MaxKeyBytes }

// MaxInboundKey is the longest key ClaimInbound takes.
const MaxInboundKey = MaxKeyBytes - len("in#")

var inNames = map[string]string{"#pk": "pk", "#holder": "holder", "#hold": "holdMs", "#first": "firstMs", "#done": "doneMs", "#exp": "exp"}

func (st *Store) updateIn(ctx context.Context, key, update, cond string, vals map[string]types.AttributeValue, extra map[string]string) (map[string]types.AttributeValue, error) {
	names := used(inNames, update, cond)
	for k, v := range extra {
		names[k] = v
	}
	in := &dynamodb.UpdateItemInput{TableName: aws.String(st.table), Key: inKey(key),
		UpdateExpression: aws.String(update), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: names, ExpressionAttributeValues: usedVals(vals, update, cond), ReturnValues: types.ReturnValueAllNew}
	if len(in.ExpressionAttributeValues) == 0 {
		in.ExpressionAttributeValues = nil
	}
	out, err := st.db.UpdateItem(ctx, in)
	if err != nil {
		return nil, err
	}
	return out.Attributes, nil
}

// ClaimInbound takes in#key for owner until hold (the invocation's
// deadline): a new message, or one whose earlier holder released it or
// died (its hold ended) before it was done.
func (st *Store) ClaimInbound(ctx context.Context, key, owner string, hold time.Time) (InboundClaim, error) {
	const op = "store.ClaimInbound"
	if !InboundKeyable(key) {
		return InboundClaim{}, &apperr.Error{Code: apperr.CodeMalformed, Class: apperr.Permanent, Op: op, Message: "inbound key empty or too long for the table"}
	}
	now := st.now()
	it, err := st.updateIn(ctx, key, "SET #holder = :owner, #hold = :hold, #first = if_not_exists(#first, :now), #exp = :exp",
		"attribute_not_exists(#done) AND (attribute_not_exists(#holder) OR #hold < :now)",
		map[string]types.AttributeValue{":owner": s(owner), ":hold": n(hold.UnixMilli()), ":now": n(now.UnixMilli()), ":exp": st.exp()}, nil)
	if conditionFailed(err) {
		out, gerr := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: inKey(key), ConsistentRead: aws.Bool(true)})
		if gerr != nil {
			return InboundClaim{}, dynamoError(op, gerr)
		}
		if _, done := out.Item["doneMs"]; done {
			return InboundClaim{Decision: InboundDuplicate}, nil
		}
		return InboundClaim{Decision: InboundBusy}, nil
	}
	if err != nil {
		return InboundClaim{}, dynamoError(op, err)
	}
	c := InboundClaim{Decision: InboundNew}
	for k := range it {
		if kind, ok := strings.CutPrefix(k, "pub_"); ok {
			c.Published = append(c.Published, kind)
		}
	}
	sort.Strings(c.Published)
	return c, nil
}

// InboundPublished marks the event kind (inbound, optout, optin) of
// in#key published, so that a retry after a later failure does not
// publish it again; false when owner no longer holds it.
func (st *Store) InboundPublished(ctx context.Context, key, owner, kind string) (bool, error) {
	_, err := st.updateIn(ctx, key, "SET #pub = :now", "#holder = :owner",
		map[string]types.AttributeValue{":owner": s(owner), ":now": n(st.now().UnixMilli())}, map[string]string{"#pub": "pub_" + kind})
	if conditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, dynamoError("store.InboundPublished", err)
	}
	return true, nil
}

// InboundDone ends in#key: every later copy of the message is a
// duplicate. False when owner no longer holds it.
func (st *Store) InboundDone(ctx context.Context, key, owner string) (bool, error) {
	_, err := st.updateIn(ctx, key, "SET #done = :now REMOVE #holder, #hold", "#holder = :owner",
		map[string]types.AttributeValue{":owner": s(owner), ":now": n(st.now().UnixMilli())}, nil)
	if conditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, dynamoError("store.InboundDone", err)
	}
	return true, nil
}

// ReleaseInbound gives in#key back (the invocation answers 5xx), so that
// Skycore's retry takes it at once instead of waiting for the hold.
func (st *Store) ReleaseInbound(ctx context.Context, key, owner string) error {
	_, err := st.updateIn(ctx, key, "REMOVE #holder, #hold", "#holder = :owner",
		map[string]types.AttributeValue{":owner": s(owner)}, nil)
	if conditionFailed(err) {
		return nil
	}
	if err != nil {
		return dynamoError("store.ReleaseInbound", err)
	}
	return nil
}
