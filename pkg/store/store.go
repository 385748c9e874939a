// Package store keeps mmsgate's records in one DynamoDB table (key pk),
// changed only by conditional updates, so that every transition below has
// exactly one winner. The state machine lives here, as methods on the
// store and the record; the sender and the postback function only ask for
// transitions.
//
// Items, their attributes and states:
//
//	item               attribute       meaning
//	msg#<id>           st              INPROGRESS (claimed by ownerId until leaseMs),
//	  (the send                        RETRY (a call surely failed: claimable),
//	  request)                         INDOUBT (a call may have reached Skycore: not
//	                                   claimable before doubtMs unless a postback
//	                                   accepts it), then one terminal state:
//	                                   ACCEPTED, REJECTED or EXPIRED
//	                   ownerId,leaseMs the claim, or the hold on pendingEvent
//	                   firstMs         first enqueue (SEND_RETRY_WINDOW starts here)
//	                   doubtMs         INDOUBT until
//	                   attempts        claims so far
//	                   trackingId,code,error,to,from,mmsId   the outcome
//	                   suppressed      rejected from the suppression list
//	                   warnings        the accepted event's warnings (docs/codes.md)
//	                   retryCode,retryMs  the last retrying event published (its code, when)
//	                   pendingEvent    the terminal event, recorded, not yet published
//	                   acceptedBy      "postback" when CLIENT_REFERENCE proved it
//	                   h00..h19,hpb    the last attempts (attempt mod 20), the postback's
//	                   pbTrk           the tracking id its postbacks came with when it was
//	                                   accepted without a usable one (check.go)
//	                   unconfirmed,uncOwner,uncHold   the receipt check of a request
//	                                   accepted without a usable tracking id (receipt.go)
//	                   md              the request's metadata, its JSON object (metadata.go)
//	                   created,updated,acceptedAt,exp        times; exp is the TTL
//	trk#<trackingId>   id              the request (written once: never re-pointed)
//	  (postbacks)      rank,state      highest state emitted (sent 1, final 2)
//	                   p_<key>         a postback advanced the state, event unconfirmed
//	                   d_<key>         a postback is done (published, or history)
//	                   holder,hold     the one emitter slot of the tracking id
//	                   firstMs         first postback (the join window)
//	                   settled,about   msg#id seen final with nothing pending, and what
//	                                   it tells every event (delivery.About)
//	                   md              the request's metadata (Link; PostbackDone if absent):
//	                                   every postback's event carries it, about does not
//	                   history         postback keys in arrival order
//	                   unconfirmed     the receipt check's event (receipt.go)
//	                   updated,exp     times; exp is the TTL
//	sup#<number>       code,source     a suppression (suppress.go): the rejected event's
//	sup#<number>#<c>     (no sending     code (E110, E114, E715, OPTED_OUT) and what made it
//	sup#<number>@<f>     to it)          (the code, "keyword", "operator"); <c> a campaignRef
//	                                   (E715), <f> the code a person wrote STOP to
//	                   reason,id       the keyword or operator's reason; the refused
//	                                   request or the inbound message id
//	                   atMs,untilMs    since; until (absent: until lifted)
//	                   wordMs          the latest keyword or operator action applied
//	                                   (older keywords retried later do not apply)
//	in#<code>:<msgId>  holder,holdMs   an inbound message (inbound.go): the invocation
//	  (inbound                         publishing its events, until holdMs
//	  messages)        pub_<kind>      its inbound / optout / optin event is published
//	                   doneMs          every event out: later copies are duplicates
//	                   firstMs,exp     first copy; TTL
//
// Transitions of msg#<id>: Claim (new, RETRY, INDOUBT past doubtMs, or a dead
// claim when the doubt window is 0) → INPROGRESS; a dead claim otherwise →
// INDOUBT; Release → RETRY; Doubt → INDOUBT; Accept, AcceptByPostback,
// Reject, Expire → terminal, only from an open state, with pendingEvent;
// TakeEvent, ReleaseEvent, EventSent hand the pending event to exactly one
// publisher at a time.
//
// A second item per tracking id rather than a GSI: a GSI is eventually
// consistent, and the first postback can arrive milliseconds after
// acceptance.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/mmsgate/mmsgate/pkg/apperr"
	"github.com/mmsgate/mmsgate/pkg/delivery"
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

// Message states. INPROGRESS, RETRY and INDOUBT are open; the rest are
// terminal (one terminal send event per id).
const (
	StateInProgress = "INPROGRESS" // claimed: a sender holds it until its lease ends
	StateRetry      = "RETRY"      // a call failed for sure; the next delivery may claim it
	StateInDoubt    = "INDOUBT"    // a call may have reached Skycore; wait for a postback until DoubtUntil
	StateAccepted   = "ACCEPTED"
	StateRejected   = "REJECTED"
	StateExpired    = "EXPIRED" // transient failures outlasted SEND_RETRY_WINDOW
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
	LeaseUntil   time.Time // the owner's claim, or its hold on PendingEvent
	DoubtUntil   time.Time // INDOUBT: when the request may be sent again
	First        time.Time // when the request was first enqueued (SEND_RETRY_WINDOW starts here)
	Attempts     int
	TrackingID   string
	Code         string
	Error        string
	To, From     string
	MMSID        string
	PendingEvent string   // a terminal event recorded but not yet published
	AcceptedBy   string   // "postback" when a postback's CLIENT_REFERENCE proved the acceptance
	Suppressed   bool     // rejected locally from the suppression list
	Warnings     []string // the accepted event's warnings, recorded with the outcome
	// RetryCode and RetryAt are the last retrying event published for the
	// id (docs/events.md "Bounded noise"); zero when none yet.
	RetryCode string
	RetryAt   time.Time
	Created   string
	History   []Step            // the last HistorySlots attempts, oldest first
	Metadata  map[string]string // the request's metadata; nil when it had none
}

// Final reports whether the message reached a terminal state.
func (m *Message) Final() bool {
	return m.State == StateAccepted || m.State == StateRejected || m.State == StateExpired || m.State == StateCanceled
}

// Held reports whether someone holds the record at now: a live claim, or
// a pending event being published by the one that recorded it.
func (m *Message) Held(now time.Time) bool { return m.LeaseUntil.After(now) }

// NeedsEvent reports whether a terminal event was recorded and not yet
// published (its publisher died or failed).
func (m *Message) NeedsEvent() bool { return m.Final() && m.PendingEvent != "" }

// About is what the record tells every event about its request
// (delivery.About): a field every event carries is kept on the record and
// read here.
func (m *Message) About() delivery.About {
	return delivery.About{ID: m.ID, TrackingID: m.TrackingID, To: m.To, From: m.From, MMSID: m.MMSID, Metadata: m.Metadata}
}

// aboutItem is a as a DynamoDB map (trk#'s about), and aboutOf reads it
// back: with Message.About, the store's one place for a field that every
// event carries. Metadata is not in it: trk# keeps it once, as md (a
// second copy would double what every postback write on trk# costs).
// Empty fields are left out (older DynamoDB stand-ins refuse empty strings).
func aboutItem(a delivery.About) types.AttributeValue {
	m := map[string]types.AttributeValue{}
	for k, v := range map[string]string{"trackingId": a.TrackingID, "to": a.To, "from": a.From, "mmsId": a.MMSID} {
		if v != "" {
			m[k] = s(v)
		}
	}
	return &types.AttributeValueMemberM{Value: m}
}

func aboutOf(it map[string]types.AttributeValue, k string) delivery.About {
	m, ok := it[k].(*types.AttributeValueMemberM)
	if !ok {
		return delivery.About{}
	}
	return delivery.About{TrackingID: str(m.Value, "trackingId"), To: str(m.Value, "to"), From: str(m.Value, "from"), MMSID: str(m.Value, "mmsId")}
}

// TerminalEvent is the event name of a terminal state ("" for open states).
func TerminalEvent(state string) string {
	switch state {
	case StateAccepted:
		return delivery.Accepted
	case StateRejected:
		return delivery.Rejected
	case StateExpired:
		return delivery.Expired
	case StateCanceled:
		return delivery.Canceled
	}
	return ""
}

func msgKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": s("msg#" + id)}
}

func trkKey(tid string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": s("trk#" + tid)}
}

// MaxKeyBytes is DynamoDB's limit on a partition key value.
const MaxKeyBytes = 2048

// Keyable reports whether a tracking id fits in a key (trk#<id>).
func Keyable(trackingID string) bool {
	return trackingID != "" && len("trk#")+len(trackingID) <= MaxKeyBytes
}

// KeyOf is the key a tracking id is stored under: the id itself when
// Keyable ("" stays "": nothing to key), else "sha256:" and the hex
// SHA-256 of the id. Skycore may
// accept a request with a tracking id too long to key (the request is then
// recorded as NO_TRACKINGID and joined through CLIENT_REFERENCE): its
// postbacks still need a key to be de-duplicated, ordered and linked by,
// and the same id always gives the same surrogate. The surrogate's first
// 16 hex digits are the hash the sender logs for such an id, unless the
// postback parser cut the id (a field over 2,048 bytes).
func KeyOf(trackingID string) string {
	if trackingID == "" || Keyable(trackingID) {
		return trackingID
	}
	sum := sha256.Sum256([]byte(trackingID))
	return SurrogatePrefix + hex.EncodeToString(sum[:])
}

// SurrogatePrefix starts every KeyOf surrogate.
const SurrogatePrefix = "sha256:"

// IsSurrogate reports whether trackingID is a KeyOf surrogate ("sha256:"
// and 64 hex digits): no tracking id Skycore issues has that form.
func IsSurrogate(trackingID string) bool {
	h, ok := strings.CutPrefix(trackingID, SurrogatePrefix)
	if !ok || len(h) != sha256.Size*2 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil
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
var names = withHistorySlots(map[string]string{
	"#pk": "pk", "#st": "st", "#lease": "leaseMs", "#owner": "ownerId", "#att": "attempts", "#created": "created",
	"#upd": "updated", "#exp": "exp", "#trk": "trackingId", "#code": "code", "#err": "error", "#to": "to",
	"#from": "from", "#mms": "mmsId", "#evt": "pendingEvent", "#acc": "acceptedAt", "#id": "id",
	"#doubt": "doubtMs", "#first": "firstMs", "#by": "acceptedBy", "#supp": "suppressed", "#md": mdAttr,
	"#warn": "warnings", "#rtc": "retryCode", "#rtm": "retryMs",
})

// withHistorySlots adds the history ring's attribute names.
func withHistorySlots(m map[string]string) map[string]string {
	for i := range HistorySlots {
		slot := historySlot(i, "sender")
		m["#hs_"+slot] = slot
	}
	m["#hs_hpb"] = "hpb"
	return m
}

// update runs one UpdateItem on msg#id with the names its expressions use,
// returning the item as it is afterwards.
func (st *Store) update(ctx context.Context, id, update, cond string, vals map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	in := &dynamodb.UpdateItemInput{
		TableName: aws.String(st.table), Key: msgKey(id),
		UpdateExpression: aws.String(update), ExpressionAttributeNames: used(names, update, cond),
		ExpressionAttributeValues: usedVals(vals, update, cond), ReturnValues: types.ReturnValueAllNew,
	}
	if cond != "" {
		in.ConditionExpression = aws.String(cond)
	}
	if len(in.ExpressionAttributeValues) == 0 { // DynamoDB refuses an empty map
		in.ExpressionAttributeValues = nil
	}
	out, err := st.db.UpdateItem(ctx, in)
	if err != nil {
		return nil, err
	}
	return out.Attributes, nil
}

// Claim is what a sender asks for when it takes an id.
type Claim struct {
	Owner string    // the SQS message id and invocation, for the logs and Release
	Lease time.Time // the claim ends here (the invocation's deadline)
	First time.Time // when the request was first enqueued (kept from the first claim)
	// InDoubt is SEND_INDOUBT_WINDOW: a claim whose holder died with its
	// lease is in doubt (its call may have reached Skycore) for this long
	// after the lease ended. 0 takes such a claim over at once.
	InDoubt time.Duration
	// Metadata is the request's metadata, kept from the first claim that
	// carries it (a redelivery is the same request).
	Metadata map[string]string
}

// Claim takes msg#id for c.Owner until c.Lease. It succeeds for a new id,
// one released for a retry, or one whose doubt window has passed; it turns a
// claim whose lease ran out (its sender died, maybe mid-call) into INDOUBT.
// Otherwise it returns the record: final (a duplicate), held elsewhere, or
// in doubt until DoubtUntil.
func (st *Store) Claim(ctx context.Context, id string, c Claim) (claimed bool, m *Message, err error) {
	const op = "store.Claim"
	now := st.now()
	cond := "attribute_not_exists(#pk) OR #st = :retry OR (#st = :doubt AND #doubt < :nowms)"
	if c.InDoubt <= 0 {
		cond += " OR (#st = :inprog AND #lease < :nowms)"
	}
	set := "SET #st = :inprog, #lease = :lease, #owner = :owner, #created = if_not_exists(#created, :now), " +
		"#first = if_not_exists(#first, :first), #upd = :now, #exp = :exp"
	vals := map[string]types.AttributeValue{
		":inprog": s(StateInProgress), ":retry": s(StateRetry), ":doubt": s(StateInDoubt), ":lease": n(c.Lease.UnixMilli()),
		":owner": s(c.Owner), ":now": s(st.stamp()), ":exp": st.exp(), ":one": n(1), ":nowms": n(now.UnixMilli()),
		":first": n(firstOr(c.First, now).UnixMilli()),
	}
	if md := mdJSON(c.Metadata); md != "" {
		set += ", #md = if_not_exists(#md, :md)"
		vals[":md"] = s(md)
	}
	it, err := st.update(ctx, id, set+" ADD #att :one REMOVE #doubt", cond, vals)
	if err == nil {
		return true, decode(id, it), nil
	}
	if !conditionFailed(err) {
		return false, nil, dynamoError(op, err)
	}
	m, err = st.Get(ctx, id)
	if err != nil {
		return false, nil, err
	}
	if m == nil { // deleted between the two calls (TTL): try once more later
		return false, &Message{ID: id, State: StateInProgress, LeaseUntil: now.Add(time.Second)}, nil
	}
	if m.State == StateInProgress && m.Owner == c.Owner && m.LeaseUntil.Equal(millis(c.Lease.UnixMilli())) {
		// Our own claim: the write took effect, its answer was lost, and
		// the SDK's retry met its condition. Otherwise the request would
		// wait out our lease and the doubt window after it.
		return true, m, nil
	}
	if m.State == StateInProgress && !m.Held(now) {
		// Its holder died with the claim: the call may have reached Skycore.
		return st.doubtExpired(ctx, m, c.InDoubt)
	}
	return false, m, nil
}

// doubtExpired moves a dead holder's claim to INDOUBT until its lease end
// plus the window: a postback may still show the call was accepted.
func (st *Store) doubtExpired(ctx context.Context, m *Message, window time.Duration) (bool, *Message, error) {
	until := m.LeaseUntil.Add(window)
	it, err := st.update(ctx, m.ID, "SET #st = :doubt, #doubt = :until, #upd = :now REMOVE #lease",
		"#st = :inprog AND #lease = :old",
		map[string]types.AttributeValue{":doubt": s(StateInDoubt), ":until": n(until.UnixMilli()), ":now": s(st.stamp()),
			":inprog": s(StateInProgress), ":old": n(m.LeaseUntil.UnixMilli())})
	if err == nil {
		return false, decode(m.ID, it), nil
	}
	if !conditionFailed(err) {
		return false, nil, dynamoError("store.Claim", err)
	}
	m, err = st.Get(ctx, m.ID) // someone else moved it first
	if err != nil {
		return false, nil, err
	}
	if m == nil {
		return false, &Message{State: StateInProgress, LeaseUntil: st.now().Add(time.Second)}, nil
	}
	return false, m, nil
}

func firstOr(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t
}

// Get reads msg#id (consistent read); nil when absent.
func (st *Store) Get(ctx context.Context, id string) (*Message, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: msgKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, dynamoError("store.Get", err)
	}
	if out.Item == nil {
		return nil, nil
	}
	return decode(id, out.Item), nil
}

func decode(id string, it map[string]types.AttributeValue) *Message {
	m := &Message{ID: id, State: str(it, "st"), Owner: str(it, "ownerId"), TrackingID: str(it, "trackingId"),
		Code: str(it, "code"), Error: str(it, "error"), To: str(it, "to"), From: str(it, "from"), MMSID: str(it, "mmsId"),
		PendingEvent: str(it, "pendingEvent"), AcceptedBy: str(it, "acceptedBy"), Created: str(it, "created"), Metadata: mdOf(it)}
	m.Attempts = int(num(it, "attempts"))
	m.LeaseUntil = millis(num(it, "leaseMs"))
	m.DoubtUntil = millis(num(it, "doubtMs"))
	m.First = millis(num(it, "firstMs"))
	m.History = decodeHistory(it)
	m.Warnings = strs(it, "warnings")
	m.RetryCode, m.RetryAt = str(it, "retryCode"), millis(num(it, "retryMs"))
	if b, ok := it["suppressed"].(*types.AttributeValueMemberBOOL); ok {
		m.Suppressed = b.Value
	}
	return m
}

func millis(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// Outcome is what a terminal write records.
type Outcome struct {
	Attempt    int  // the claim's attempt number (Message.Attempts), for the history slot
	Suppressed bool // rejected locally: the number is on the suppression list
	TrackingID string
	Code       string
	Error      string
	To, From   string
	MMSID      string
	// Warnings are kept on the record (terminal and give-back writes; an
	// empty list leaves what is there) for whoever publishes the accepted event.
	Warnings []string
	// RetryCode, RetryAt: a give-back write records the retrying event just
	// published (zero RetryAt: none published, the last one stays).
	RetryCode string
	RetryAt   time.Time
}

// open is the condition of every write that ends a request: it is not
// terminal yet. Only one writer wins the terminal state, and only the
// winner publishes its event.
const open = "attribute_exists(#pk) AND #st IN (:inprog, :retry, :doubt)"

// Accept records Skycore's Success for msg#id, the accepted event pending
// and held by owner until hold (so that a duplicate delivery does not
// publish it too). It wins unless the id is already terminal: a sender
// whose claim ran out, or a signed hand-off, still records a real
// acceptance. won=false returns the record as it is (for example a
// postback's CLIENT_REFERENCE recorded the acceptance first).
func (st *Store) Accept(ctx context.Context, id, owner string, hold time.Time, o Outcome) (won bool, m *Message, err error) {
	return st.terminal(ctx, "store.Accept", id, owner, hold, StateAccepted, "", o)
}

// AcceptByPostback records the acceptance that a postback carrying the
// request's CLIENT_REFERENCE proves (the sender's call timed out, or its
// sender died mid-call). It does not win against a live claim: that
// sender's answer is on its way and it records the outcome (and publishes
// anything it announces) first, so no event of its can follow the
// postback's; the postback is retried.
//
// A surrogate (KeyOf of a tracking id too long to key) is recorded as the
// sender records that answer: NO_TRACKINGID, without a tracking id, so
// that the accepted event reads the same whoever recorded it.
func (st *Store) AcceptByPostback(ctx context.Context, id, trackingID, owner string, hold time.Time) (won bool, m *Message, err error) {
	o := Outcome{TrackingID: trackingID}
	if IsSurrogate(trackingID) {
		o = Outcome{Code: string(apperr.CodeNoTrackingID)}
	}
	return st.terminal(ctx, "store.AcceptByPostback", id, owner, hold, StateAccepted, "postback", o)
}

// openUnheld is open, but not under a live claim.
const openUnheld = "attribute_exists(#pk) AND (#st IN (:retry, :doubt) OR (#st = :inprog AND #lease < :nowms))"

// Reject records msg#id as rejected for good, the rejected event pending.
func (st *Store) Reject(ctx context.Context, id, owner string, hold time.Time, o Outcome) (won bool, m *Message, err error) {
	return st.terminal(ctx, "store.Reject", id, owner, hold, StateRejected, "", o)
}

// Expire records msg#id as expired (SEND_RETRY_WINDOW spent), the expired
// event pending.
func (st *Store) Expire(ctx context.Context, id, owner string, hold time.Time, o Outcome) (won bool, m *Message, err error) {
	return st.terminal(ctx, "store.Expire", id, owner, hold, StateExpired, "", o)
}

func (st *Store) terminal(ctx context.Context, op, id, owner string, hold time.Time, state, by string, o Outcome) (bool, *Message, error) {
	if by == "" {
		by = "sender"
	}
	upd := "SET #st = :st, #trk = :trk, #code = :code, #err = :err, #evt = :evt, #owner = :owner, #lease = :hold, " +
		"#acc = :now, #upd = :now, #exp = :exp, " + st.historySet(o, by)
	vals := map[string]types.AttributeValue{
		":st": s(state), ":trk": s(o.TrackingID), ":code": s(o.Code), ":err": s(o.Error), ":evt": s(TerminalEvent(state)),
		":owner": s(owner), ":hold": n(hold.UnixMilli()), ":now": s(st.stamp()), ":exp": st.exp(),
		":inprog": s(StateInProgress), ":retry": s(StateRetry), ":doubt": s(StateInDoubt), ":h": st.historyEntry(o, state, by),
	}
	// Keep what an earlier write knew when this one does not know it.
	byAttr := by
	if by == "sender" {
		byAttr = ""
	}
	for _, f := range []struct{ name, v string }{{"#to", o.To}, {"#from", o.From}, {"#mms", o.MMSID}, {"#by", byAttr}} {
		if f.v != "" {
			ph := ":" + f.name[1:]
			upd += ", " + f.name + " = " + ph
			vals[ph] = s(f.v)
		}
	}
	if o.Suppressed {
		upd += ", #supp = :supp"
		vals[":supp"] = &types.AttributeValueMemberBOOL{Value: true}
	}
	upd += outcomeNotes(o, vals)
	upd += " REMOVE #doubt"
	cond := open
	if by == "postback" {
		cond = openUnheld
		vals[":nowms"] = n(st.now().UnixMilli())
	}
	it, err := st.update(ctx, id, upd, cond, vals)
	if err == nil {
		return true, decode(id, it), nil
	}
	if !conditionFailed(err) {
		return false, nil, dynamoError(op, err)
	}
	m, err := st.Get(ctx, id)
	if err != nil {
		return false, nil, err
	}
	return false, m, nil
}

// TakeEvent gives owner the record's pending event until hold, unless its
// recorder (or another taker) still holds it. Exactly one of the deliveries
// and postbacks that find a pending event publishes it at a time.
func (st *Store) TakeEvent(ctx context.Context, id, owner string, hold time.Time) (took bool, m *Message, err error) {
	it, err := st.update(ctx, id, "SET #owner = :owner, #lease = :hold, #upd = :now",
		"attribute_exists(#evt) AND (attribute_not_exists(#lease) OR #lease < :nowms OR #owner = :owner)",
		map[string]types.AttributeValue{":owner": s(owner), ":hold": n(hold.UnixMilli()), ":now": s(st.stamp()),
			":nowms": n(st.now().UnixMilli())})
	if err == nil {
		return true, decode(id, it), nil
	}
	if !conditionFailed(err) {
		return false, nil, dynamoError("store.TakeEvent", err)
	}
	m, err = st.Get(ctx, id)
	return false, m, err
}

// EventSent clears the pending event of msg#id and its hold.
func (st *Store) EventSent(ctx context.Context, id string) error {
	_, err := st.update(ctx, id, "REMOVE #evt, #lease", "attribute_exists(#pk)", nil)
	if err != nil && !conditionFailed(err) {
		return dynamoError("store.EventSent", err)
	}
	return nil
}

// ReleaseEvent hands a pending event over to the next delivery or postback
// at once (its holder could not publish it).
func (st *Store) ReleaseEvent(ctx context.Context, id, owner string) error {
	_, err := st.update(ctx, id, "REMOVE #lease", "#owner = :owner AND attribute_exists(#evt)",
		map[string]types.AttributeValue{":owner": s(owner)})
	if err != nil && !conditionFailed(err) {
		return dynamoError("store.ReleaseEvent", err)
	}
	return nil
}

// Release gives owner's claim back after a call that surely failed, so that
// the next delivery can claim it at once. applied is false when the claim
// is no longer owner's (its lease ran out, or a postback recorded the
// acceptance meanwhile): the caller then has nothing to announce.
func (st *Store) Release(ctx context.Context, id, owner string, o Outcome) (applied bool, err error) {
	return st.giveBack(ctx, "store.Release", id, owner, StateRetry, time.Time{}, o)
}

// Doubt gives owner's claim back after a call that may have reached
// Skycore (a timeout, a dropped connection): no one sends it again before
// until, unless a postback first shows it was accepted.
func (st *Store) Doubt(ctx context.Context, id, owner string, until time.Time, o Outcome) (applied bool, err error) {
	return st.giveBack(ctx, "store.Doubt", id, owner, StateInDoubt, until, o)
}

func (st *Store) giveBack(ctx context.Context, op, id, owner, state string, until time.Time, o Outcome) (bool, error) {
	upd := "SET #st = :st, #code = :code, #upd = :now, " + st.historySet(o, "sender")
	vals := map[string]types.AttributeValue{":st": s(state), ":code": s(o.Code), ":now": s(st.stamp()), ":owner": s(owner),
		":inprog": s(StateInProgress), ":h": st.historyEntry(o, state, "sender")}
	if state == StateInDoubt {
		upd += ", #doubt = :until"
		vals[":until"] = n(until.UnixMilli())
	}
	upd += outcomeNotes(o, vals)
	_, err := st.update(ctx, id, upd+" REMOVE #lease", "#owner = :owner AND #st = :inprog", vals)
	if conditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, dynamoError(op, err)
	}
	return true, nil
}

// History is kept on the record in HistorySlots ring attributes h00..h19
// (one per attempt, attempt mod 20) and hpb (an acceptance a postback
// proved), so an item stays far below DynamoDB's 400 KB whatever happens.
const HistorySlots = 20

// Step is one entry of a record's history.
type Step struct {
	At         time.Time
	Attempt    int
	State      string // what the attempt ended in: RETRY, INDOUBT, ACCEPTED, ...
	Code       string
	TrackingID string
	By         string // sender or postback
}

func historySlot(attempt int, by string) string {
	if by == "postback" {
		return "hpb"
	}
	return fmt.Sprintf("h%02d", attempt%HistorySlots)
}

func (st *Store) historySet(o Outcome, by string) string {
	return "#hs_" + historySlot(o.Attempt, by) + " = :h"
}

func (st *Store) historyEntry(o Outcome, state, by string) types.AttributeValue {
	return &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
		"at": n(st.now().UnixMilli()), "n": n(int64(o.Attempt)), "st": s(state), "code": s(o.Code), "trk": s(o.TrackingID), "by": s(by),
	}}
}

func decodeHistory(it map[string]types.AttributeValue) []Step {
	var out []Step
	for k, v := range it {
		if len(k) < 3 || k[0] != 'h' || !(k == "hpb" || k[1] >= '0' && k[1] <= '9') {
			continue
		}
		m, ok := v.(*types.AttributeValueMemberM)
		if !ok {
			continue
		}
		out = append(out, Step{At: millis(num(m.Value, "at")), Attempt: int(num(m.Value, "n")), State: str(m.Value, "st"),
			Code: str(m.Value, "code"), TrackingID: str(m.Value, "trk"), By: str(m.Value, "by")})
	}
	// Two steps may share a millisecond: the attempt number orders them.
	sort.Slice(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return out[i].Attempt < out[j].Attempt
	})
	return out
}

// ErrLinkConflict means the tracking id already names another request.
var ErrLinkConflict = &apperr.Error{Code: apperr.CodeConflict, Class: apperr.Permanent, Op: "store.Link",
	Message: "tracking id already linked to another request"}

// Link records trackingID → id for the postback function, only when the
// tracking id is unlinked or already names id: nothing can re-point
// another request's tracking id. md is the request's metadata, kept with
// the link so that the postback function's one read of trk# has it.
func (st *Store) Link(ctx context.Context, trackingID, id string, md map[string]string) error {
	if !Keyable(trackingID) {
		return &apperr.Error{Code: apperr.CodeMalformed, Class: apperr.Permanent, Op: "store.Link", Message: "tracking id too long to key"}
	}
	upd := "SET #id = :id, #exp = :exp" // past a postback's short UnlinkedTTL
	names := map[string]string{"#id": "id", "#exp": "exp"}
	vals := map[string]types.AttributeValue{":id": s(id), ":exp": st.exp()}
	if v := mdJSON(md); v != "" {
		upd += ", #md = :md"
		names["#md"], vals[":md"] = mdAttr, s(v)
	}
	_, err := st.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(st.table),
		Key:                       trkKey(trackingID),
		UpdateExpression:          aws.String(upd),
		ConditionExpression:       aws.String("attribute_not_exists(#id) OR #id = :id"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: vals,
	})
	if conditionFailed(err) {
		return ErrLinkConflict
	}
	if err != nil {
		return dynamoError("store.Link", err)
	}
	return nil
}

func conditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// dynamoError classifies a DynamoDB failure: throttling, 5xx and network
// errors are transient (Retry); a refusal that the same call will meet
// again (validation, access denied, missing table) needs a person (Config).
func dynamoError(op string, err error) *apperr.Error {
	e := &apperr.Error{Code: apperr.CodeUnavailable, Class: apperr.Retry, Op: op, Message: "DynamoDB call failed", Err: err}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "ValidationException", "AccessDeniedException", "ResourceNotFoundException", "UnrecognizedClientException",
			"ItemCollectionSizeLimitExceededException", "MissingAuthenticationTokenException", "InvalidSignatureException":
			e.Code, e.Class, e.Message = apperr.CodeStore, apperr.Config, "DynamoDB refused the call: "+api.ErrorCode()
		}
	}
	return e
}

// outcomeNotes sets the warnings and the last retrying event that o
// carries (none: the record keeps its own).
func outcomeNotes(o Outcome, vals map[string]types.AttributeValue) string {
	var upd string
	if len(o.Warnings) > 0 {
		l := make([]types.AttributeValue, len(o.Warnings))
		for i, w := range o.Warnings {
			l[i] = s(w)
		}
		upd += ", #warn = :warn"
		vals[":warn"] = &types.AttributeValueMemberL{Value: l}
	}
	if !o.RetryAt.IsZero() {
		upd += ", #rtc = :rtc, #rtm = :rtm"
		vals[":rtc"], vals[":rtm"] = s(o.RetryCode), n(o.RetryAt.UnixMilli())
	}
	return upd
}

func strs(it map[string]types.AttributeValue, k string) []string {
	l, ok := it[k].(*types.AttributeValueMemberL)
	if !ok || len(l.Value) == 0 {
		return nil
	}
	out := make([]string, 0, len(l.Value))
	for _, v := range l.Value {
		if v, ok := v.(*types.AttributeValueMemberS); ok {
			out = append(out, v.Value)
		}
	}
	return out
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
