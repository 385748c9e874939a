package store

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// UnlinkedTTL is how long a tracking item that no request was linked to
// is kept: a postback creates trk#<T> with this expiry, and Link extends
// it to the records' TTL. Anyone who can post a postback can name any
// tracking id; those that are nobody's must not be stored for 30 days. A
// day outlasts the join window (pkg/postback) and Skycore's retries.
const UnlinkedTTL = 24 * time.Hour

// unlinkedExp is the expiry of a tracking item a postback creates.
func (st *Store) unlinkedExp() int64 {
	return st.now().Add(min(UnlinkedTTL, st.ttl)).Unix()
}

// LinkedID is the request trk#trackingID names ("" when none, or when
// the tracking id cannot be keyed): one consistent read, no write.
func (st *Store) LinkedID(ctx context.Context, trackingID string) (string, error) {
	if !Keyable(trackingID) {
		return "", nil
	}
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: trkKey(trackingID),
		ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String("#id"), ExpressionAttributeNames: map[string]string{"#id": "id"}})
	if err != nil {
		return "", dynamoError("store.LinkedID", err)
	}
	return str(out.Item, "id"), nil
}
