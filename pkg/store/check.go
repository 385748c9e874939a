package store

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mmsgate/mmsgate/pkg/apperr"
)

// Target is what a receipt check (pkg/receipt) reads of its request,
// never of its queue message: anyone able to write the queue could name
// another tracking id or due.
type Target struct {
	*Message
	AcceptedAt time.Time // when the terminal state was recorded: the check is due RECEIPT_WINDOW after
	// Tracking is the tracking id whose item trk#<Tracking> names this
	// request: the record's own, or, for a request accepted without a
	// usable one (NO_TRACKINGID, or one too long to key), the one its
	// postbacks came with when they joined through CLIENT_REFERENCE
	// (NoteReceiptTracking). "" when there is none: the check marks
	// msg#<id> instead.
	Tracking string
}

// pbTrk on msg#<id>: the tracking id of the postbacks that joined a
// request accepted without a usable tracking id of its own.
const pbTrkAttr = "pbTrk"

// CheckTarget reads msg#id and the tracking item its check must look at
// (consistent reads); nil when the request has no record.
func (st *Store) CheckTarget(ctx context.Context, id string) (*Target, error) {
	const op = "store.CheckTarget"
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: msgKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, dynamoError(op, err)
	}
	if out.Item == nil {
		return nil, nil
	}
	t := &Target{Message: decode(id, out.Item)}
	if acc, err := time.Parse(time.RFC3339Nano, str(out.Item, "acceptedAt")); err == nil {
		t.AcceptedAt = acc
	}
	cand := t.TrackingID
	if !Keyable(cand) {
		if u := str(out.Item, "unconfirmed"); u != "" && u != uncPending {
			// Its unconfirmed event went out on msg# before a postback was
			// noted: it stays the one (CheckReceipt says published).
			return t, nil
		}
		cand = str(out.Item, pbTrkAttr)
	}
	if !Keyable(cand) {
		return t, nil
	}
	trk, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: trkKey(cand), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, dynamoError(op, err)
	}
	if str(trk.Item, "id") == id { // written once, never re-pointed (Link)
		t.Tracking = cand
	}
	return t, nil
}

// ErrReceiptCheckBusy: a receipt check of the request is publishing its
// unconfirmed event right now; the postback waits for it (its receipt
// then follows the unconfirmed event, never races it).
var ErrReceiptCheckBusy = &apperr.Error{Code: apperr.CodeBusy, Class: apperr.Retry, Op: "store.NoteReceiptTracking",
	Message: "receipt check being published"}

// NoteReceiptTracking records on msg#id the tracking id its postbacks come
// with (trk#trackingID linked to id), when the record has no usable
// tracking id of its own (NO_TRACKINGID, or one too long to key): its
// receipt check then sees those postbacks' receipts. The first noted
// tracking id stays; one linked to another request is not noted. It returns ErrReceiptCheckBusy while a check holds
// the request's unconfirmed marker, so that the postback's event never
// races the unconfirmed one to the queue.
func (st *Store) NoteReceiptTracking(ctx context.Context, id, trackingID string) error {
	const op = "store.NoteReceiptTracking"
	if !Keyable(trackingID) {
		return nil
	}
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: msgKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return dynamoError(op, err)
	}
	it := out.Item
	if it == nil || Keyable(str(it, "trackingId")) || str(it, pbTrkAttr) != "" {
		return nil
	}
	// Only a tracking item that names this request (a conflicting link
	// leaves it another's): the check would otherwise wait on it for ever.
	trk, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: trkKey(trackingID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return dynamoError(op, err)
	}
	if str(trk.Item, "id") != id {
		return nil
	}
	now := st.now().UnixMilli()
	if str(it, "unconfirmed") == uncPending && num(it, "uncHold") >= now {
		return ErrReceiptCheckBusy
	}
	const (
		upd  = "SET #pbt = :t"
		cond = "attribute_exists(#pk) AND attribute_not_exists(#pbt) AND #trk = :cur AND " +
			"(attribute_not_exists(#unc) OR #unc <> :pending OR #uncHold < :nowms)"
	)
	_, err = st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(st.table), Key: msgKey(id),
		UpdateExpression: aws.String(upd), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: map[string]string{"#pbt": pbTrkAttr, "#pk": "pk", "#trk": "trackingId", "#unc": "unconfirmed", "#uncHold": "uncHold"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": s(trackingID), ":cur": s(str(it, "trackingId")),
			":pending": s(uncPending), ":nowms": n(now)},
	})
	if conditionFailed(err) {
		// Changed since the read: a check took the marker, or another
		// postback noted first. Look again on the retry.
		return ErrReceiptCheckBusy
	}
	if err != nil {
		return dynamoError(op, err)
	}
	return nil
}
