package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mmsgate/mmsgate/pkg/delivery"
)

// A request with a future sendAt waits in its own msg#<id> record (the
// design, and why not on the send queue, is pkg/schedule's doc):
//
//	attribute      meaning
//	st             SCHEDULED until it is due; then RETRY with attempts 0
//	               (claimable, never called): the body is back on its queue
//	body           the request as it came, while SCHEDULED (the queue's copy
//	               is deleted once this is written)
//	sendAtMs       sendAt; firstMs is set to it too (SEND_RETRY_WINDOW
//	               counts from sendAt)
//	lane           "bulk" when it came on the bulk lane
//	pendingEvent   "scheduled" until that event is published
//	dueShard,dueMs the sparse index DueIndex: present only while SCHEDULED
//	               with its scheduled event published. dueMs starts at
//	               sendAt; a sweeper's claim moves it forward by its lease
//
// One item per request, so that a cancel, a claim and a hand-off are each
// one conditional write on one item: no transaction, no window between two
// items in which a cancel and a schedule could both win.

// Scheduling states (the other states are in store.go).
const (
	StateScheduled = "SCHEDULED" // waiting for sendAt in its record, body included
	StateCanceled  = "CANCELED"  // terminal: a cancel won before any call
)

// EventScheduled is the pending event of a SCHEDULED record until it is
// published.
const EventScheduled = delivery.Scheduled

// The due index: a sparse GSI (template.yaml's MessagesTable) keyed by
// dueShard and dueMs, keys only. DueShards spread the writes of a burst of
// schedules over several index partitions; a sweep queries each.
const (
	DueIndex     = "due"
	DueShards    = 4
	dueShardAttr = "dueShard"
	dueMsAttr    = "dueMs"
)

// DueIndexDefinition is the GSI as template.yaml declares it, for local
// tables (CreateTable's caller adds it to its input).
func DueIndexDefinition() (types.GlobalSecondaryIndex, []types.AttributeDefinition) {
	return types.GlobalSecondaryIndex{
			IndexName: aws.String(DueIndex),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(dueShardAttr), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(dueMsAttr), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
		}, []types.AttributeDefinition{
			{AttributeName: aws.String(dueShardAttr), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(dueMsAttr), AttributeType: types.ScalarAttributeTypeN},
		}
}

// DueShard is the index partition of id.
func DueShard(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return fmt.Sprintf("due%d", h.Sum32()%DueShards)
}

// schedNames are the attribute names of the scheduling writes.
var schedNames = map[string]string{
	"#pk": "pk", "#st": "st", "#body": "body", "#sendAt": "sendAtMs", "#lane": "lane", "#first": "firstMs",
	"#created": "created", "#upd": "updated", "#exp": "exp", "#evt": "pendingEvent", "#owner": "ownerId",
	"#lease": "leaseMs", "#to": "to", "#from": "from", "#mms": "mmsId", "#shard": dueShardAttr, "#due": dueMsAttr,
	"#att": "attempts", "#acc": "acceptedAt", "#doubt": "doubtMs", "#code": "code", "#err": "error", "#md": mdAttr,
}

// write runs one UpdateItem on msg#id with the scheduling names its
// expressions use; a failed condition is reported as ok=false, not an error.
func (st *Store) write(ctx context.Context, op, id, update, cond string, vals map[string]types.AttributeValue) (it map[string]types.AttributeValue, ok bool, err error) {
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(st.table), Key: msgKey(id),
		UpdateExpression: aws.String(update), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: used(schedNames, update, cond), ExpressionAttributeValues: usedVals(vals, update, cond),
		ReturnValues: types.ReturnValueAllNew,
	}
	if len(in.ExpressionAttributeValues) == 0 {
		in.ExpressionAttributeValues = nil
	}
	out, err := st.db.UpdateItem(ctx, in)
	if conditionFailed(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, dynamoError(op, err)
	}
	return out.Attributes, true, nil
}

// Scheduled is a scheduled request's record.
type Scheduled struct {
	*Message
	SendAt time.Time
	Body   string // "" once handed to the send queue
	Lane   string
	Due    time.Time // zero while its scheduled event is pending or once handed off
}

func decodeScheduled(id string, it map[string]types.AttributeValue) *Scheduled {
	return &Scheduled{Message: decode(id, it), SendAt: millis(num(it, "sendAtMs")), Body: str(it, "body"), Lane: str(it, "lane"),
		Due: millis(num(it, dueMsAttr))}
}

// ScheduledEventPending reports whether m is SCHEDULED and its scheduled
// event is not published yet (its publisher died or failed).
func (m *Message) ScheduledEventPending() bool {
	return m.State == StateScheduled && m.PendingEvent == EventScheduled
}

// ScheduleRequest is what a sender records for a request whose sendAt is
// in the future.
type ScheduleRequest struct {
	Body     string    // the SQS body as received (at most 256 KiB: an item holds 400 KB)
	SendAt   time.Time // after now, at most 35 days ahead (pkg/sendreq checks)
	Lane     string    // "bulk" for the bulk lane, "" otherwise
	To, From string    // for the scheduled and canceled events
	MMSID    string
	Metadata map[string]string // echoed in every event of the id
	Owner    string            // the scheduled event's publisher
	Hold     time.Time         // until when it holds the event (its invocation's deadline)
}

// RecordSchedule records msg#id as SCHEDULED with its body, the scheduled
// event pending and held by r.Owner until r.Hold: the caller publishes it,
// then calls ScheduledEventSent, and only then deletes the SQS message.
// It wins only for an id never seen: won=false returns the record as it
// is, SCHEDULED already (a redelivery: publish its event if
// ScheduledEventPending, through TakeEvent), a cancel's tombstone, or an id
// claimed or finished before. The record lives until sendAt plus the TTL.
func (st *Store) RecordSchedule(ctx context.Context, id string, r ScheduleRequest) (won bool, sc *Scheduled, err error) {
	const op = "store.RecordSchedule"
	upd := "SET #st = :sched, #body = :body, #sendAt = :sendAt, #first = :sendAt, #created = :now, #upd = :now, " +
		"#exp = :exp, #evt = :evt, #owner = :owner, #lease = :hold, #att = :zero"
	vals := map[string]types.AttributeValue{
		":sched": s(StateScheduled), ":body": s(r.Body), ":sendAt": n(r.SendAt.UnixMilli()), ":now": s(st.stamp()),
		":exp": n(r.SendAt.Add(st.ttl).Unix()), ":evt": s(EventScheduled), ":owner": s(r.Owner),
		":hold": n(r.Hold.UnixMilli()), ":zero": n(0),
	}
	for _, f := range []struct{ name, v string }{{"#lane", r.Lane}, {"#to", r.To}, {"#from", r.From}, {"#mms", r.MMSID}, {"#md", mdJSON(r.Metadata)}} {
		if f.v != "" {
			ph := ":" + f.name[1:]
			upd += ", " + f.name + " = " + ph
			vals[ph] = s(f.v)
		}
	}
	it, ok, err := st.write(ctx, op, id, upd, "attribute_not_exists(#pk)", vals)
	if err != nil {
		return false, nil, err
	}
	if ok {
		return true, decodeScheduled(id, it), nil
	}
	cur, err := st.GetScheduled(ctx, id)
	if err != nil {
		return false, nil, err
	}
	if cur == nil { // removed by TTL between the two calls: the next delivery records it
		return false, &Scheduled{Message: &Message{ID: id, State: StateInProgress, LeaseUntil: st.now().Add(time.Second)}}, nil
	}
	return false, cur, nil
}

// GetScheduled reads msg#id with its scheduling attributes (consistent
// read); nil when absent.
func (st *Store) GetScheduled(ctx context.Context, id string) (*Scheduled, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: msgKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, dynamoError("store.GetScheduled", err)
	}
	if out.Item == nil {
		return nil, nil
	}
	return decodeScheduled(id, out.Item), nil
}

// ScheduledEventSent clears the scheduled event of msg#id and puts it in
// the due index, at its sendAt: from now on a sweep can hand it off. It
// does nothing when the record is not SCHEDULED with that event pending
// (another delivery marked it first).
func (st *Store) ScheduledEventSent(ctx context.Context, id string) error {
	_, _, err := st.write(ctx, "store.ScheduledEventSent", id,
		"SET #shard = :shard, #due = #sendAt, #upd = :now REMOVE #evt, #lease",
		"#st = :sched AND #evt = :evt",
		map[string]types.AttributeValue{":shard": s(DueShard(id)), ":now": s(st.stamp()), ":sched": s(StateScheduled), ":evt": s(EventScheduled)})
	return err
}

// Querier is the part of DynamoDB that reads the due index (only the
// sweeper's role may Query).
type Querier interface {
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// DueItem is one entry of the due index.
type DueItem struct {
	ID  string
	Due time.Time // its dueMs, as ClaimDue must see it
}

// Due lists up to limit entries of the due index with dueMs at or before
// until, the earliest of each shard first, each shard its share of limit
// (so that a busy shard cannot starve the others). The index is eventually
// consistent: ClaimDue checks each entry on the record itself.
func (st *Store) Due(ctx context.Context, q Querier, until time.Time, limit int) ([]DueItem, error) {
	var out []DueItem
	share := max(1, limit/DueShards)
	for i := range DueShards {
		limit := min(limit, len(out)+share)
		in := &dynamodb.QueryInput{
			TableName: aws.String(st.table), IndexName: aws.String(DueIndex),
			KeyConditionExpression:   aws.String("#shard = :shard AND #due <= :until"),
			ExpressionAttributeNames: map[string]string{"#shard": dueShardAttr, "#due": dueMsAttr},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":shard": s(fmt.Sprintf("due%d", i)), ":until": n(until.UnixMilli()),
			},
		}
		for len(out) < limit {
			in.Limit = aws.Int32(int32(min(limit-len(out), 1000)))
			page, err := q.Query(ctx, in)
			if err != nil {
				return out, dynamoError("store.Due", err)
			}
			for _, it := range page.Items {
				if id, ok := strings.CutPrefix(str(it, "pk"), "msg#"); ok {
					out = append(out, DueItem{ID: id, Due: millis(num(it, dueMsAttr))})
				}
			}
			if len(page.LastEvaluatedKey) == 0 {
				break
			}
			in.ExclusiveStartKey = page.LastEvaluatedKey
		}
	}
	return out, nil
}

// ClaimDue takes a due entry for one hand-off: it moves dueMs from seen
// (what the index showed) to now+lease, so that one sweeper at a time
// hands it off, and a sweeper that dies before Unschedule leaves it to the
// sweep after the lease. claimed=false when the entry changed meanwhile
// (another sweeper, a cancel, a hand-off by the sender, a stale index).
func (st *Store) ClaimDue(ctx context.Context, id string, seen time.Time, lease time.Duration) (claimed bool, sc *Scheduled, err error) {
	it, ok, err := st.write(ctx, "store.ClaimDue", id, "SET #due = :next, #upd = :now",
		"#st = :sched AND #due = :seen AND attribute_not_exists(#evt)",
		map[string]types.AttributeValue{":next": n(st.now().Add(lease).UnixMilli()), ":now": s(st.stamp()),
			":sched": s(StateScheduled), ":seen": n(seen.UnixMilli())})
	if err != nil || !ok {
		return false, nil, err
	}
	return true, decodeScheduled(id, it), nil
}

// Unschedule ends the wait of a SCHEDULED record whose sendAt is at or
// before dueBy, once its body is back on the send queue: RETRY with
// attempts 0, claimable by the delivery that brings the body (Claim keeps
// firstMs, which is sendAt). The sweeper calls it after its SendMessage
// with dueBy = the end of its look-ahead; a sender that receives a due
// body of a record still SCHEDULED (a sweeper died between the two) calls
// it with dueBy = now and claims. applied=false returns the record as it
// is (canceled meanwhile, handed off already, not yet due, or its
// scheduled event still pending).
func (st *Store) Unschedule(ctx context.Context, id string, dueBy time.Time) (applied bool, m *Message, err error) {
	it, ok, err := st.write(ctx, "store.Unschedule", id, "SET #st = :retry, #upd = :now REMOVE #shard, #due, #body",
		"#st = :sched AND #sendAt <= :dueBy AND attribute_not_exists(#evt)",
		map[string]types.AttributeValue{":retry": s(StateRetry), ":now": s(st.stamp()), ":sched": s(StateScheduled),
			":dueBy": n(dueBy.UnixMilli())})
	if err != nil {
		return false, nil, err
	}
	if ok {
		return true, decode(id, it), nil
	}
	m, err = st.Get(ctx, id)
	return false, m, err
}
