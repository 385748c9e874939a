package store

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mmsgate/mmsgate/pkg/delivery"
)

// ReceiptDecision is what one receipt check (pkg/receipt) does.
type ReceiptDecision int

const (
	// ReceiptEmit: the unconfirmed marker is set and this check holds the
	// emitter slot: publish the unconfirmed event, then call ReceiptDone
	// (or ReceiptRelease on failure).
	ReceiptEmit ReceiptDecision = iota
	// ReceiptFinal: a final receipt (delivered, undelivered, failed) came
	// first: nothing to publish.
	ReceiptFinal
	// ReceiptPublished: the unconfirmed event went out already (a
	// duplicate check).
	ReceiptPublished
	// ReceiptBusy: the tracking id's emitter slot is held (a postback is
	// being published), or the request's accepted event is still pending:
	// check again in a few seconds.
	ReceiptBusy
	// ReceiptGone: there is no accepted request to check (its record ran
	// out): nothing to publish.
	ReceiptGone
)

func (d ReceiptDecision) String() string {
	return [...]string{"emit", "final", "published", "busy", "gone"}[d]
}

// Receipt-check attributes. On trk#<T> the check uses the tracking id's
// emitter slot (holder, hold: postback.go), so an unconfirmed event and a
// postback's event never race each other to the queue; on msg#<id> (a
// request accepted without a usable tracking id) it has its own hold.
//
//	unconfirmed   "pending" while being published, then when it was published
//	uncOwner      msg# only: the check publishing it
//	uncHold       msg# only: until when (ms)
const uncPending = "pending"

var receiptNames = map[string]string{"#pk": "pk", "#rank": "rank", "#state": "state", "#holder": "holder", "#hold": "hold",
	"#unc": "unconfirmed", "#uncOwner": "uncOwner", "#uncHold": "uncHold", "#exp": "exp", "#upd": "updated",
	"#st": "st", "#evt": "pendingEvent", "#id": "id", "#pbt": pbTrkAttr}

// finalRank is the rank of a final receipt on trk#.
const finalRank = delivery.RankFinal

// receiptKey is the item a check of (id, trackingID) marks: trk#<T> when
// the tracking id can be keyed, else msg#<id>.
func receiptKey(id, trackingID string) (key map[string]types.AttributeValue, onTracking bool) {
	if Keyable(trackingID) {
		return trkKey(trackingID), true
	}
	return msgKey(id), false
}

// CheckReceipt decides, atomically, whether the unconfirmed event of an
// accepted request is to be published now. On trk#<trackingID> it wins
// only while no final receipt was recorded (rank < 2), no unconfirmed
// event went out, and the emitter slot is free: it then sets the pending
// marker and takes the slot for owner until hold. A request accepted
// without a usable tracking id is marked on msg#<id> instead (only once
// its accepted event is out). status is the request's last known state for
// the event: "sent" when a sent receipt came, else "accepted".
func (st *Store) CheckReceipt(ctx context.Context, id, trackingID, owner string, hold time.Time) (d ReceiptDecision, status string, err error) {
	const op = "store.CheckReceipt"
	key, onTracking := receiptKey(id, trackingID)
	if onTracking {
		// Most checks find the final receipt already there: a read (a fifth
		// of the price of the write that would fail) settles them. A final rank
		// never goes back, so the answer cannot turn stale.
		got, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: key, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return 0, "", dynamoError(op, err)
		}
		if num(got.Item, "rank") >= finalRank {
			return ReceiptFinal, "", nil
		}
	}
	vals := map[string]types.AttributeValue{
		":pending": s(uncPending), ":owner": s(owner), ":hold": n(hold.UnixMilli()), ":nowms": n(st.now().UnixMilli()),
		":final": n(finalRank), ":exp": st.exp(), ":now": s(st.stamp()), ":accepted": s(StateAccepted), ":id": s(id),
	}
	var upd, cond string
	if onTracking {
		upd = "SET #unc = :pending, #holder = :owner, #hold = :hold, #exp = if_not_exists(#exp, :exp), #upd = :now"
		// Only the tracking item that names this request: a check never
		// creates one, nor marks another request's.
		cond = "#id = :id AND (attribute_not_exists(#rank) OR #rank < :final) AND (attribute_not_exists(#unc) OR #unc = :pending) AND " +
			"(attribute_not_exists(#hold) OR #hold < :nowms)"
	} else {
		upd = "SET #unc = :pending, #uncOwner = :owner, #uncHold = :hold, #upd = :now"
		// Not once a postback noted its tracking id (NoteReceiptTracking):
		// the next check looks at that tracking item.
		cond = "attribute_exists(#pk) AND #st = :accepted AND attribute_not_exists(#evt) AND attribute_not_exists(#pbt) AND " +
			"(attribute_not_exists(#unc) OR (#unc = :pending AND #uncHold < :nowms))"
	}
	out, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(st.table), Key: key,
		UpdateExpression: aws.String(upd), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: used(receiptNames, upd, cond), ExpressionAttributeValues: usedVals(vals, upd, cond),
		ReturnValues: types.ReturnValueAllNew,
	})
	if err == nil {
		return ReceiptEmit, receiptStatus(out.Attributes, onTracking), nil
	}
	if !conditionFailed(err) {
		return 0, "", dynamoError(op, err)
	}
	got, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, "", dynamoError(op, err)
	}
	it := got.Item
	unc := str(it, "unconfirmed")
	switch {
	case onTracking && num(it, "rank") >= finalRank:
		return ReceiptFinal, "", nil
	case onTracking && str(it, "id") != id:
		return ReceiptGone, "", nil
	case unc != "" && unc != uncPending:
		return ReceiptPublished, "", nil
	case !onTracking && (it == nil || str(it, "st") != StateAccepted):
		return ReceiptGone, "", nil
	}
	return ReceiptBusy, "", nil
}

func receiptStatus(it map[string]types.AttributeValue, onTracking bool) string {
	if onTracking && num(it, "rank") >= 1 {
		if v := str(it, "state"); v != "" {
			return v
		}
		return "sent"
	}
	return "accepted"
}

// ReceiptDone records that the unconfirmed event of (id, trackingID) was
// published and gives owner's hold back. The mark stays even when the
// slot is no longer owner's (its hold ran out and someone else took it).
func (st *Store) ReceiptDone(ctx context.Context, id, trackingID, owner string) error {
	key, onTracking := receiptKey(id, trackingID)
	vals := map[string]types.AttributeValue{":stamp": s(st.stamp()), ":owner": s(owner)}
	tries := []struct{ update, cond string }{
		{"SET #unc = :stamp REMOVE #holder, #hold", "#holder = :owner"},
		{"SET #unc = :stamp", "attribute_exists(#pk)"},
	}
	if !onTracking {
		tries = tries[1:]
		tries[0].update = "SET #unc = :stamp REMOVE #uncOwner, #uncHold"
	}
	for _, a := range tries {
		_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(st.table), Key: key,
			UpdateExpression: aws.String(a.update), ConditionExpression: aws.String(a.cond),
			ExpressionAttributeNames: used(receiptNames, a.update, a.cond), ExpressionAttributeValues: usedVals(vals, a.update, a.cond),
		})
		if err == nil {
			return nil
		}
		if !conditionFailed(err) {
			return dynamoError("store.ReceiptDone", err)
		}
	}
	return nil
}

// ReceiptRelease clears the pending marker and gives owner's hold back at
// once (the event could not be published), so that the next check
// publishes it.
func (st *Store) ReceiptRelease(ctx context.Context, id, trackingID, owner string) error {
	key, onTracking := receiptKey(id, trackingID)
	upd, cond := "REMOVE #unc, #holder, #hold", "#holder = :owner AND #unc = :pending"
	if !onTracking {
		upd, cond = "REMOVE #unc, #uncOwner, #uncHold", "#uncOwner = :owner AND #unc = :pending"
	}
	vals := map[string]types.AttributeValue{":owner": s(owner), ":pending": s(uncPending)}
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(st.table), Key: key,
		UpdateExpression: aws.String(upd), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: used(receiptNames, upd, cond), ExpressionAttributeValues: usedVals(vals, upd, cond),
	})
	if err != nil && !conditionFailed(err) {
		return dynamoError("store.ReceiptRelease", err)
	}
	return nil
}
