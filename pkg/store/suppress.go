package store

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Suppression is sup#<key>: a number that is not sent to, with no Skycore
// call, while the entry is live (docs/events.md, "Suppression"). Keys:
//
//	<number>             every request to the number (E110, E114, operator)
//	<number>#<campaign>  requests of one campaignRef (E715)
//	<number>@<code>      requests from one short or long code: the person
//	                     wrote an opt-out keyword to that code (or an
//	                     operator said so with --from)
//
// A number is digits only, so '#' and '@' cannot be part of it and the
// three kinds of keys never collide.
type Suppression struct {
	Key    string
	Code   string // the rejected event's code: Skycore's (E110, E114, E715) or OPTED_OUT
	Source string // what made it: E110, E114, E715, "keyword" or "operator"
	Reason string // the keyword written (STOP), or the operator's --reason
	ID     string // the request Skycore refused, or the inbound message id of the keyword
	At     time.Time
	Until  time.Time // zero: until lifted (E114, opt-outs, operator entries)
}

// Sources of a suppression besides Skycore's codes.
const (
	SourceKeyword  = "keyword"
	SourceOperator = "operator"
)

// CodeOptedOut is the code of a request rejected because its number opted
// out (a keyword, or an operator's entry).
const CodeOptedOut = "OPTED_OUT"

// untilLifted are the Skycore codes whose suppression has no end: a
// blacklisted number (E114) stays so until someone lifts it; an invalid
// number (E110) may be reassigned, so it lasts SUPPRESS_TTL.
var untilLifted = map[string]bool{"E114": true}

// SuppressionKey is the item key of a number, or of a number within one
// campaign when campaign is not "".
func SuppressionKey(to, campaign string) string {
	if campaign == "" {
		return to
	}
	return to + "#" + campaign
}

// OptOutKey is the item key of a number for requests from one code (an
// opt-out), or of the number when from is "".
func OptOutKey(to, from string) string {
	if from == "" {
		return to
	}
	return to + "@" + from
}

// Explain is the rejected event's error for a request refused by s. It
// says why without naming the request or message that caused the entry:
// the event goes to whoever sent this request, which may not be who sent
// that one (`mmsgate suppress list` shows it to the operator).
func (s *Suppression) Explain() string {
	at := s.At.UTC().Format(time.RFC3339)
	switch s.Source {
	case SourceKeyword:
		number, code, _ := strings.Cut(s.Key, "@")
		return fmt.Sprintf("%s: suppressed: %s wrote %s to %s at %s; no call until it opts in again or the entry is lifted",
			s.Code, number, s.Reason, code, at)
	case SourceOperator:
		return fmt.Sprintf("%s: suppressed: %s was put on the list by an operator at %s; no call until the entry is lifted", s.Code, s.Key, at)
	}
	until := "it is lifted"
	if !s.Until.IsZero() {
		until = s.Until.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("%s: suppressed: Skycore refused %s with %s at %s; no call until %s", s.Code, s.Key, s.Code, at, until)
}

// UntilLifted reports whether Skycore's code suppresses a number until
// someone lifts it (E114) rather than for SUPPRESS_TTL.
func UntilLifted(code string) bool { return untilLifted[code] }

// Live reports whether the entry still suppresses at now.
func (s *Suppression) Live(now time.Time) bool { return s.Until.IsZero() || s.Until.After(now) }

func supKey(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": s("sup#" + key)}
}

var supNames = map[string]string{"#pk": "pk", "#code": "code", "#src": "source", "#why": "reason", "#id": "id",
	"#at": "atMs", "#until": "untilMs", "#word": "wordMs", "#exp": "exp"}

func (st *Store) updateSup(ctx context.Context, op, key, update, cond string, vals map[string]types.AttributeValue) (applied bool, err error) {
	in := &dynamodb.UpdateItemInput{TableName: aws.String(st.table), Key: supKey(key),
		UpdateExpression: aws.String(update), ExpressionAttributeNames: used(supNames, update, cond),
		ExpressionAttributeValues: usedVals(vals, update, cond)}
	if cond != "" {
		in.ConditionExpression = aws.String(cond)
	}
	if _, err := st.db.UpdateItem(ctx, in); conditionFailed(err) {
		return false, nil
	} else if err != nil {
		return false, dynamoError(op, err)
	}
	return true, nil
}

// Suppressed returns the live suppression of key, or nil (a consistent
// read: an entry written before the call is seen).
func (st *Store) Suppressed(ctx context.Context, key string) (*Suppression, error) {
	out, err := st.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: supKey(key), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, dynamoError("store.Suppressed", err)
	}
	if out.Item == nil {
		return nil, nil
	}
	sup := decodeSuppression(key, out.Item)
	if !sup.Live(st.now()) { // lifted, or expired before TTL removed it
		return nil, nil
	}
	return sup, nil
}

// SuppressedFor is what the sender checks after it claims a request and
// before it calls Skycore: the live suppression of the request's number
// from its code (an opt-out), of the number, or of the number within its
// campaign, in that order; nil when none. Its Code is the rejected event's
// (OPTED_OUT for opt-outs and operator entries). Each read is consistent,
// so an opt-out recorded before the read refuses the request.
func (st *Store) SuppressedFor(ctx context.Context, to, from, campaign string) (*Suppression, error) {
	keys := []string{SuppressionKey(to, "")}
	if from != "" {
		keys = append([]string{OptOutKey(to, from)}, keys...)
	}
	if campaign != "" {
		keys = append(keys, SuppressionKey(to, campaign))
	}
	for _, k := range keys {
		if sup, err := st.Suppressed(ctx, k); sup != nil || err != nil {
			return sup, err
		}
	}
	return nil, nil
}

func decodeSuppression(key string, it map[string]types.AttributeValue) *Suppression {
	sup := &Suppression{Key: key, Code: str(it, "code"), Source: str(it, "source"), Reason: str(it, "reason"),
		ID: str(it, "id"), At: millis(num(it, "atMs"))}
	if _, ok := it["untilMs"]; ok {
		sup.Until = millis(num(it, "untilMs"))
		if sup.Until.IsZero() { // untilMs 0: ended (never "until lifted")
			sup.Until = time.UnixMilli(0)
		}
	}
	if sup.Source == "" { // written before sources were recorded
		sup.Source = sup.Code
	}
	return sup
}

// Suppress records that Skycore refused key (a number, or number#campaign)
// with code for request id: for ttl (SUPPRESS_TTL), or until lifted when
// code is E114. An entry that is live until lifted is never overwritten
// (neither shortened nor its source replaced).
func (st *Store) Suppress(ctx context.Context, key, code, id string, ttl time.Duration) error {
	now := st.now()
	vals := map[string]types.AttributeValue{":code": s(code), ":id": s(id), ":at": n(now.UnixMilli()),
		":until": n(now.Add(ttl).UnixMilli()), ":exp": n(now.Add(ttl).Add(24 * time.Hour).Unix())}
	update := "SET #code = :code, #src = :code, #id = :id, #at = :at, #until = :until, #exp = :exp REMOVE #why"
	if untilLifted[code] {
		update = "SET #code = :code, #src = :code, #id = :id, #at = :at REMOVE #until, #exp, #why"
	}
	_, err := st.updateSup(ctx, "store.Suppress", key, update, "attribute_not_exists(#pk) OR attribute_exists(#until)", vals)
	return err
}

// Word is a person's opt-out or opt-in keyword, from an inbound message.
type Word struct {
	Keyword   string    // as matched (STOP)
	MessageID string    // the inbound message's TRANSACTIONID / TRACKINGID
	At        time.Time // when the person wrote it (RECEIVED / TIMESTAMP), else when it was recorded
}

// OptOut records that to wrote an opt-out keyword to the code from:
// requests to to from from are rejected (OPTED_OUT) until an opt-in or a
// lift. Words apply in the order they were written, not the order their
// postbacks arrive: false (nothing changed) when a later word, or an
// operator's action, is already recorded for the key, as when a STOP's
// postback is retried after the START that followed it.
func (st *Store) OptOut(ctx context.Context, to, from string, w Word) (applied bool, err error) {
	at := st.wordTime(w)
	return st.updateSup(ctx, "store.OptOut", OptOutKey(to, from),
		"SET #code = :code, #src = :src, #why = :why, #id = :id, #at = :now, #word = :word REMOVE #until, #exp",
		"attribute_not_exists(#word) OR #word <= :word",
		map[string]types.AttributeValue{":code": s(CodeOptedOut), ":src": s(SourceKeyword), ":why": s(w.Keyword),
			":id": s(w.MessageID), ":now": n(st.now().UnixMilli()), ":word": n(at.UnixMilli())})
}

// OptIn records that to wrote an opt-in keyword to the code from: the
// opt-out of to from from ends (false when a later word or an operator's
// action is recorded). It also lifts an E114 entry of the number recorded
// before the word: Skycore answers E114 to a number that opted out at its
// end, and lifts that on the opt-in too (if it still refuses, its next
// E114 suppresses the number again). The record is written even with no
// opt-out to end, so that an older STOP retried later cannot undo it.
func (st *Store) OptIn(ctx context.Context, to, from string, w Word) (applied bool, err error) {
	at := st.wordTime(w)
	now := st.now()
	applied, err = st.updateSup(ctx, "store.OptIn", OptOutKey(to, from),
		"SET #until = :now, #word = :word, #exp = :exp",
		"attribute_not_exists(#word) OR #word <= :word",
		map[string]types.AttributeValue{":now": n(now.UnixMilli()), ":word": n(at.UnixMilli()), ":exp": st.exp()})
	if err != nil || !applied || from == "" {
		return applied, err
	}
	_, err = st.updateSup(ctx, "store.OptIn", SuppressionKey(to, ""),
		"SET #until = :now, #exp = :exp",
		"#code = :e114 AND #at <= :word AND (attribute_not_exists(#until) OR #until > :now)",
		map[string]types.AttributeValue{":now": n(now.UnixMilli()), ":word": n(at.UnixMilli()), ":exp": st.exp(), ":e114": s("E114")})
	return true, err
}

func (st *Store) wordTime(w Word) time.Time {
	if w.At.IsZero() {
		return st.now()
	}
	return w.At
}

// SuppressByOperator puts to on the list until lifted: for requests from
// the code from, or from every code when from is "" (mmsgate suppress
// add). Requests to it are rejected with OPTED_OUT.
func (st *Store) SuppressByOperator(ctx context.Context, to, from, reason string) error {
	now := n(st.now().UnixMilli())
	_, err := st.updateSup(ctx, "store.SuppressByOperator", OptOutKey(to, from),
		"SET #code = :code, #src = :src, #why = :why, #id = :id, #at = :now, #word = :now REMOVE #until, #exp", "",
		map[string]types.AttributeValue{":code": s(CodeOptedOut), ":src": s(SourceOperator), ":why": s(reason), ":id": s(""), ":now": now})
	return err
}

// Lift ends key's suppression now, whatever made it (mmsgate suppress
// lift); false when there was no live one. A keyword written before the
// lift and retried after it does not bring it back.
func (st *Store) Lift(ctx context.Context, key string) (bool, error) {
	now := n(st.now().UnixMilli())
	return st.updateSup(ctx, "store.Lift", key, "SET #until = :now, #word = :now, #exp = :exp",
		"attribute_exists(#pk) AND (attribute_not_exists(#until) OR #until > :now)",
		map[string]types.AttributeValue{":now": now, ":exp": st.exp()})
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
			if sup.Live(st.now()) {
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
