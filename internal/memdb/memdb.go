// Package memdb is an in-memory DynamoDB for fast tests: its methods have
// the aws-sdk-go-v2 client's signatures, so code written against
// *dynamodb.Client (pkg/store) runs on it unchanged, with no emulator.
//
// It implements the expression language (update, condition, filter and
// projection expressions with their placeholders) and the validation
// errors a real table returns, so that a state machine built on
// conditional writes behaves here as it does on DynamoDB; the conformance
// test replays the same operations on dynalite to keep it honest. It has no
// secondary indexes, Query, batch or transaction calls, streams or TTL, and
// rejects the legacy parameters (AttributeUpdates, Expected, ...) rather
// than ignore them.
//
// Its scope is frozen to what pkg/store calls: a store change that needs
// more of DynamoDB runs its tests on dynalite (`go test` without -short)
// rather than growing this package. It exists because no library fits:
// github.com/truora/minidyn was tried and fails the store's tests.
package memdb

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// DB is a set of tables, safe for concurrent use. Every call sees the
// latest write (reads are consistent).
type DB struct {
	mu     sync.Mutex
	tables map[string]*table
	fail   func(op, key string) error
}

type keyAttr struct{ name, typ string }

type table struct {
	desc  types.TableDescription
	hash  keyAttr
	rng   keyAttr // name "" without a sort key
	items map[string]map[string]types.AttributeValue
}

// New returns an empty DB.
func New() *DB { return &DB{tables: map[string]*table{}} }

// Fail installs a fault hook: before each call, f(op, key) runs with the
// operation's name ("UpdateItem", "GetItem", "PutItem", "DeleteItem",
// "CreateTable", "Scan") and the partition key's value ("" when the call
// has none); a non-nil error is returned as the call's error, nothing else
// happening. Fail(nil) removes it.
func (db *DB) Fail(f func(op, key string) error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.fail = f
}

// ValidationError is the error DynamoDB returns for an invalid request.
func ValidationError(msg string) error {
	return &smithy.GenericAPIError{Code: "ValidationException", Message: msg, Fault: smithy.FaultClient}
}

func notFound() error {
	return &types.ResourceNotFoundException{Message: aws.String("Requested resource not found")}
}

func (db *DB) before(ctx context.Context, op string, key map[string]types.AttributeValue) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	db.mu.Lock()
	f := db.fail
	db.mu.Unlock()
	if f == nil {
		return nil
	}
	return f(op, hashString(key))
}

// hashString is the partition key's value for the fault hook: the key is
// the only attribute of a single-key table (mmsgate's pk).
func hashString(key map[string]types.AttributeValue) string {
	if len(key) != 1 {
		return ""
	}
	for _, v := range key {
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			return v.Value
		case *types.AttributeValueMemberN:
			return v.Value
		case *types.AttributeValueMemberB:
			return string(v.Value)
		}
	}
	return ""
}

var tableName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)

func checkTableName(name *string) error {
	if name == nil || !tableName.MatchString(*name) {
		return ValidationError(fmt.Sprintf("1 validation error detected: Value '%s' at 'tableName' failed to satisfy constraint: "+
			"Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and length 3 to 255", aws.ToString(name)))
	}
	return nil
}

// CreateTable creates a table keyed as KeySchema says (a HASH key and an
// optional RANGE key of type S, N or B). It is ACTIVE at once.
func (db *DB) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	if err := db.before(ctx, "CreateTable", nil); err != nil {
		return nil, err
	}
	if err := checkTableName(in.TableName); err != nil {
		return nil, err
	}
	defs := map[string]string{}
	for _, d := range in.AttributeDefinitions {
		t := string(d.AttributeType)
		if t != "S" && t != "N" && t != "B" {
			return nil, ValidationError("Member must satisfy enum value set: [B, N, S]")
		}
		defs[aws.ToString(d.AttributeName)] = t
	}
	t := &table{items: map[string]map[string]types.AttributeValue{}}
	for _, k := range in.KeySchema {
		name := aws.ToString(k.AttributeName)
		typ, ok := defs[name]
		if !ok {
			return nil, ValidationError("One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions")
		}
		switch {
		case k.KeyType == types.KeyTypeHash && t.hash.name == "":
			t.hash = keyAttr{name, typ}
		case k.KeyType == types.KeyTypeRange && t.rng.name == "":
			t.rng = keyAttr{name, typ}
		default:
			return nil, ValidationError("Invalid KeySchema: " + string(k.KeyType) + " key repeated or unknown")
		}
	}
	if t.hash.name == "" {
		return nil, ValidationError("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
	}
	if n := len(t.keyNames()); len(defs) != n {
		return nil, ValidationError("One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions")
	}
	now := time.Now()
	t.desc = types.TableDescription{
		TableName: in.TableName, TableStatus: types.TableStatusActive, CreationDateTime: &now,
		KeySchema: slices.Clone(in.KeySchema), AttributeDefinitions: slices.Clone(in.AttributeDefinitions),
		TableArn: aws.String("arn:aws:dynamodb:local:000000000000:table/" + *in.TableName),
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if _, ok := db.tables[*in.TableName]; ok {
		return nil, &types.ResourceInUseException{Message: aws.String("Table already exists: " + *in.TableName)}
	}
	db.tables[*in.TableName] = t
	d := t.desc
	return &dynamodb.CreateTableOutput{TableDescription: &d}, nil
}

func (t *table) keyNames() []string {
	if t.rng.name == "" {
		return []string{t.hash.name}
	}
	return []string{t.hash.name, t.rng.name}
}

// table returns the named table; db.mu is held.
func (db *DB) table(name *string) (*table, error) {
	t, ok := db.tables[aws.ToString(name)]
	if !ok {
		return nil, notFound()
	}
	return t, nil
}

// keyOf checks key against the schema and returns its storage key; key
// is already cleaned (numbers canonical).
func (t *table) keyOf(key map[string]types.AttributeValue, inItem bool) (string, error) {
	if !inItem && len(key) != len(t.keyNames()) {
		return "", ValidationError("The provided key element does not match the schema")
	}
	var b strings.Builder
	for i, k := range []keyAttr{t.hash, t.rng} {
		if k.name == "" {
			continue
		}
		v, ok := key[k.name]
		if !ok || typeName(v) != k.typ {
			if inItem && !ok {
				return "", ValidationError("One or more parameter values were invalid: Missing the key " + k.name + " in the item")
			}
			if inItem {
				return "", ValidationError(fmt.Sprintf("One or more parameter values were invalid: Type mismatch for key %s expected: %s actual: %s", k.name, k.typ, typeName(v)))
			}
			return "", ValidationError("The provided key element does not match the schema")
		}
		var raw string
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			raw = v.Value
		case *types.AttributeValueMemberN:
			raw = v.Value
		case *types.AttributeValueMemberB:
			raw = string(v.Value)
		}
		if raw == "" {
			kind := map[string]string{"S": "string", "B": "binary"}[k.typ]
			return "", ValidationError("One or more parameter values were invalid: The AttributeValue for a key attribute cannot contain an empty " + kind + " value. Key: " + k.name)
		}
		if k.typ != "N" && i == 0 && len(raw) > 2048 {
			return "", ValidationError("One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of 2048 bytes")
		}
		if k.typ != "N" && i == 1 && len(raw) > 1024 {
			return "", ValidationError("One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes")
		}
		fmt.Fprintf(&b, "%d:%s/", len(raw), raw)
	}
	return b.String(), nil
}

// request is the parsed, validated part of a call that does not depend on
// the table.
type request struct {
	env     *env
	acts    []ract
	cond    *rcond
	updated []Path
	proj    []Path
}

// prepare validates the placeholders and expressions of a call.
func prepare(names map[string]string, vals map[string]types.AttributeValue, update, cond, proj *string) (*request, error) {
	if names != nil && update == nil && cond == nil && proj == nil {
		return nil, ValidationError("ExpressionAttributeNames can only be specified when using expressions")
	}
	if vals != nil && update == nil && cond == nil {
		return nil, ValidationError("ExpressionAttributeValues can only be specified when using expressions")
	}
	e, msg := newEnv(names, vals)
	if msg != "" {
		return nil, ValidationError(msg)
	}
	r := &request{env: e}
	if update != nil {
		u, err := ParseUpdate(*update)
		if err != nil {
			return nil, ValidationError("Invalid UpdateExpression: " + err.Error())
		}
		if r.acts, msg = e.checkUpdate(u); msg != "" {
			return nil, ValidationError("Invalid UpdateExpression: " + msg)
		}
		for _, a := range r.acts {
			r.updated = append(r.updated, a.path)
		}
	}
	if cond != nil {
		c, err := ParseCond(*cond)
		if err != nil {
			return nil, ValidationError("Invalid ConditionExpression: " + err.Error())
		}
		if r.cond, msg = e.checkCond(c); msg != "" {
			return nil, ValidationError("Invalid ConditionExpression: " + msg)
		}
	}
	if proj != nil {
		ps, err := ParseProjection(*proj)
		if err != nil {
			return nil, ValidationError("Invalid ProjectionExpression: " + err.Error())
		}
		for _, p := range ps {
			rp, msg := e.path(p)
			if msg != "" {
				return nil, ValidationError("Invalid ProjectionExpression: " + msg)
			}
			r.proj = append(r.proj, rp)
		}
	}
	if msg := e.unused(); msg != "" {
		return nil, ValidationError(msg)
	}
	return r, nil
}

func (r *request) check(item map[string]types.AttributeValue, onFail types.ReturnValuesOnConditionCheckFailure) error {
	if r.cond == nil {
		return nil
	}
	if item == nil {
		item = map[string]types.AttributeValue{}
	}
	if eval(item, r.cond) {
		return nil
	}
	err := &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}
	if onFail == types.ReturnValuesOnConditionCheckFailureAllOld && len(item) > 0 {
		err.Item = copyItem(item)
	}
	return err
}

func cleanKey(key map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	k, msg := cleanItem(key)
	if msg != "" {
		return nil, ValidationError(msg)
	}
	return k, nil
}

func legacy(params map[string]bool) error {
	for _, name := range sortedKeys(params) {
		if params[name] {
			return ValidationError("memdb: the legacy parameter " + name + " is not supported; use expressions")
		}
	}
	return nil
}

// UpdateItem applies UpdateExpression to the item at Key, creating it when
// absent, if ConditionExpression holds.
func (db *DB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if err := db.before(ctx, "UpdateItem", in.Key); err != nil {
		return nil, err
	}
	if err := legacy(map[string]bool{"AttributeUpdates": in.AttributeUpdates != nil, "Expected": in.Expected != nil, "ConditionalOperator": in.ConditionalOperator != ""}); err != nil {
		return nil, err
	}
	if err := checkTableName(in.TableName); err != nil {
		return nil, err
	}
	switch in.ReturnValues {
	case "", types.ReturnValueNone, types.ReturnValueAllOld, types.ReturnValueAllNew, types.ReturnValueUpdatedOld, types.ReturnValueUpdatedNew:
	default:
		return nil, ValidationError("ReturnValues: member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]")
	}
	key, err := cleanKey(in.Key)
	if err != nil {
		return nil, err
	}
	r, err := prepare(in.ExpressionAttributeNames, in.ExpressionAttributeValues, in.UpdateExpression, in.ConditionExpression, nil)
	if err != nil {
		return nil, err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	t, err := db.table(in.TableName)
	if err != nil {
		return nil, err
	}
	k, err := t.keyOf(key, false)
	if err != nil {
		return nil, err
	}
	for _, p := range r.updated {
		if slices.Contains(t.keyNames(), p[0].Name) {
			if len(p) > 1 {
				return nil, ValidationError("Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: Key: " + p[0].Name)
			}
			return nil, ValidationError("One or more parameter values were invalid: Cannot update attribute " + p[0].Name + ". This attribute is part of the key")
		}
	}
	old := t.items[k]
	if err := r.check(old, in.ReturnValuesOnConditionCheckFailure); err != nil {
		return nil, err
	}
	item := copyItem(old)
	if item == nil {
		item = key
	}
	if msg := apply(item, r.acts); msg != "" {
		return nil, ValidationError(msg)
	}
	if ItemSize(item) > MaxItemSize {
		return nil, ValidationError("Item size to update has exceeded the maximum allowed size")
	}
	t.items[k] = item
	out := &dynamodb.UpdateItemOutput{}
	switch in.ReturnValues {
	case types.ReturnValueAllOld:
		out.Attributes = copyItem(old)
	case types.ReturnValueUpdatedOld:
		if old != nil {
			out.Attributes = project(old, r.updated)
		}
	case types.ReturnValueAllNew:
		out.Attributes = copyItem(item)
	case types.ReturnValueUpdatedNew:
		out.Attributes = project(item, r.updated)
	}
	return out, nil
}

// GetItem reads the item at Key (always a consistent read); Item is nil
// when there is none.
func (db *DB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if err := db.before(ctx, "GetItem", in.Key); err != nil {
		return nil, err
	}
	if err := legacy(map[string]bool{"AttributesToGet": in.AttributesToGet != nil}); err != nil {
		return nil, err
	}
	if err := checkTableName(in.TableName); err != nil {
		return nil, err
	}
	key, err := cleanKey(in.Key)
	if err != nil {
		return nil, err
	}
	r, err := prepare(in.ExpressionAttributeNames, nil, nil, nil, in.ProjectionExpression)
	if err != nil {
		return nil, err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	t, err := db.table(in.TableName)
	if err != nil {
		return nil, err
	}
	k, err := t.keyOf(key, false)
	if err != nil {
		return nil, err
	}
	item := t.items[k]
	if item == nil {
		return &dynamodb.GetItemOutput{}, nil
	}
	if r.proj != nil {
		p := project(item, r.proj)
		if p == nil {
			p = map[string]types.AttributeValue{}
		}
		return &dynamodb.GetItemOutput{Item: p}, nil
	}
	return &dynamodb.GetItemOutput{Item: copyItem(item)}, nil
}

// PutItem replaces the item if ConditionExpression holds.
func (db *DB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if err := db.before(ctx, "PutItem", keyGuess(db, in.TableName, in.Item)); err != nil {
		return nil, err
	}
	if err := legacy(map[string]bool{"Expected": in.Expected != nil, "ConditionalOperator": in.ConditionalOperator != ""}); err != nil {
		return nil, err
	}
	if err := checkTableName(in.TableName); err != nil {
		return nil, err
	}
	if in.ReturnValues != "" && in.ReturnValues != types.ReturnValueNone && in.ReturnValues != types.ReturnValueAllOld {
		return nil, ValidationError("ReturnValues can only be ALL_OLD or NONE")
	}
	item, msg := cleanItem(in.Item)
	if msg != "" {
		return nil, ValidationError(msg)
	}
	if ItemSize(item) > MaxItemSize {
		return nil, ValidationError("Item size has exceeded the maximum allowed size")
	}
	r, err := prepare(in.ExpressionAttributeNames, in.ExpressionAttributeValues, nil, in.ConditionExpression, nil)
	if err != nil {
		return nil, err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	t, err := db.table(in.TableName)
	if err != nil {
		return nil, err
	}
	k, err := t.keyOf(item, true)
	if err != nil {
		return nil, err
	}
	old := t.items[k]
	if err := r.check(old, in.ReturnValuesOnConditionCheckFailure); err != nil {
		return nil, err
	}
	t.items[k] = item
	out := &dynamodb.PutItemOutput{}
	if in.ReturnValues == types.ReturnValueAllOld {
		out.Attributes = copyItem(old)
	}
	return out, nil
}

// keyGuess is the partition key of a PutItem's item, for the fault hook.
func keyGuess(db *DB, name *string, item map[string]types.AttributeValue) map[string]types.AttributeValue {
	db.mu.Lock()
	defer db.mu.Unlock()
	if t, ok := db.tables[aws.ToString(name)]; ok {
		if v, ok := item[t.hash.name]; ok {
			return map[string]types.AttributeValue{t.hash.name: v}
		}
	}
	return nil
}

// DeleteItem removes the item at Key if ConditionExpression holds;
// deleting an absent item succeeds.
func (db *DB) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if err := db.before(ctx, "DeleteItem", in.Key); err != nil {
		return nil, err
	}
	if err := legacy(map[string]bool{"Expected": in.Expected != nil, "ConditionalOperator": in.ConditionalOperator != ""}); err != nil {
		return nil, err
	}
	if err := checkTableName(in.TableName); err != nil {
		return nil, err
	}
	if in.ReturnValues != "" && in.ReturnValues != types.ReturnValueNone && in.ReturnValues != types.ReturnValueAllOld {
		return nil, ValidationError("ReturnValues can only be ALL_OLD or NONE")
	}
	key, err := cleanKey(in.Key)
	if err != nil {
		return nil, err
	}
	r, err := prepare(in.ExpressionAttributeNames, in.ExpressionAttributeValues, nil, in.ConditionExpression, nil)
	if err != nil {
		return nil, err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	t, err := db.table(in.TableName)
	if err != nil {
		return nil, err
	}
	k, err := t.keyOf(key, false)
	if err != nil {
		return nil, err
	}
	old := t.items[k]
	if err := r.check(old, in.ReturnValuesOnConditionCheckFailure); err != nil {
		return nil, err
	}
	delete(t.items, k)
	out := &dynamodb.DeleteItemOutput{}
	if in.ReturnValues == types.ReturnValueAllOld {
		out.Attributes = copyItem(old)
	}
	return out, nil
}

// Scan returns the table's items in key order (DynamoDB's order is its
// hash order; any fixed order is as good to a caller), filtered by
// FilterExpression, with Limit and ExclusiveStartKey paging.
func (db *DB) Scan(ctx context.Context, in *dynamodb.ScanInput, _ ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	if err := db.before(ctx, "Scan", nil); err != nil {
		return nil, err
	}
	if err := legacy(map[string]bool{"ScanFilter": in.ScanFilter != nil, "AttributesToGet": in.AttributesToGet != nil,
		"ConditionalOperator": in.ConditionalOperator != "", "IndexName": in.IndexName != nil, "Segment": in.Segment != nil}); err != nil {
		return nil, err
	}
	if err := checkTableName(in.TableName); err != nil {
		return nil, err
	}
	if in.Limit != nil && *in.Limit < 1 {
		return nil, ValidationError("Limit: member must have value greater than or equal to 1")
	}
	if in.ExpressionAttributeValues != nil && in.FilterExpression == nil {
		return nil, ValidationError("ExpressionAttributeValues can only be specified when using expressions: FilterExpression is null")
	}
	r, err := prepare(in.ExpressionAttributeNames, in.ExpressionAttributeValues, nil, in.FilterExpression, in.ProjectionExpression)
	if err != nil {
		return nil, err
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	t, err := db.table(in.TableName)
	if err != nil {
		return nil, err
	}
	start := ""
	if in.ExclusiveStartKey != nil {
		key, err := cleanKey(in.ExclusiveStartKey)
		if err != nil {
			return nil, err
		}
		if start, err = t.keyOf(key, false); err != nil {
			return nil, err
		}
	}
	out := &dynamodb.ScanOutput{}
	for _, k := range sortedKeys(t.items) {
		if start != "" && k <= start {
			continue
		}
		item := t.items[k]
		out.ScannedCount++
		if r.cond == nil || eval(item, r.cond) {
			if r.proj != nil {
				out.Items = append(out.Items, project(item, r.proj))
			} else {
				out.Items = append(out.Items, copyItem(item))
			}
			out.Count++
		}
		if in.Limit != nil && out.ScannedCount == *in.Limit {
			out.LastEvaluatedKey = map[string]types.AttributeValue{}
			for _, n := range t.keyNames() {
				out.LastEvaluatedKey[n] = copyValue(item[n])
			}
			break
		}
	}
	return out, nil
}
