package memdb_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mmsgate/mmsgate/internal/memdb"
)

const tbl = "memdb-test"

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
func l(v ...types.AttributeValue) types.AttributeValue {
	return &types.AttributeValueMemberL{Value: v}
}
func ss(v ...string) types.AttributeValue { return &types.AttributeValueMemberSS{Value: v} }
func m(v map[string]types.AttributeValue) types.AttributeValue {
	return &types.AttributeValueMemberM{Value: v}
}

type item = map[string]types.AttributeValue

func key(pk string) item { return item{"pk": s(pk)} }

func newDB(t *testing.T) *memdb.DB {
	t.Helper()
	db := memdb.New()
	if _, err := db.CreateTable(context.Background(), createInput(tbl)); err != nil {
		t.Fatal(err)
	}
	return db
}

func createInput(name string) *dynamodb.CreateTableInput {
	return &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}
}

// plain turns attribute values into comparable Go values (the SDK types
// have unexported fields); sets are sorted, since their order is not kept.
func plain(v types.AttributeValue) any {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return "S:" + v.Value
	case *types.AttributeValueMemberN:
		return "N:" + v.Value
	case *types.AttributeValueMemberB:
		return "B:" + string(v.Value)
	case *types.AttributeValueMemberBOOL:
		return fmt.Sprint("BOOL:", v.Value)
	case *types.AttributeValueMemberNULL:
		return "NULL"
	case *types.AttributeValueMemberSS:
		return sorted("SS", v.Value)
	case *types.AttributeValueMemberNS:
		return sorted("NS", v.Value)
	case *types.AttributeValueMemberBS:
		var bs []string
		for _, b := range v.Value {
			bs = append(bs, string(b))
		}
		return sorted("BS", bs)
	case *types.AttributeValueMemberL:
		out := []any{}
		for _, e := range v.Value {
			out = append(out, plain(e))
		}
		return out
	case *types.AttributeValueMemberM:
		return plainItem(v.Value)
	}
	return fmt.Sprintf("unknown %T", v)
}

func sorted(kind string, v []string) string {
	c := append([]string(nil), v...)
	sort.Strings(c)
	return kind + ":" + strings.Join(c, ",")
}

func plainItem(it item) map[string]any {
	if it == nil {
		return nil
	}
	out := map[string]any{}
	for k, v := range it {
		out[k] = plain(v)
	}
	return out
}

// code is the API error code of err ("" for nil).
func code(err error) string {
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return "not an API error: " + err.Error()
}

func get(t *testing.T, db *memdb.DB, pk string) map[string]any {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(tbl), Key: key(pk)})
	if err != nil {
		t.Fatal(err)
	}
	return plainItem(out.Item)
}

func put(t *testing.T, db *memdb.DB, it item) {
	t.Helper()
	if _, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(tbl), Item: it}); err != nil {
		t.Fatal(err)
	}
}

var base = item{
	"pk": s("k"), "n": n("5"), "st": s("hello"), "ls": l(s("x"), n("1")), "set": ss("a", "b"),
	"mp": m(item{"in": n("1"), "deep": m(item{"x": s("y")})}), "b": &types.AttributeValueMemberB{Value: []byte("bin")},
	"t": &types.AttributeValueMemberBOOL{Value: true}, "nul": &types.AttributeValueMemberNULL{Value: true},
	"ns": &types.AttributeValueMemberNS{Value: []string{"1", "2.5"}},
}

func TestUpdateExpression(t *testing.T) {
	tests := []struct {
		name   string
		update string
		names  map[string]string
		vals   item
		want   map[string]any // attributes changed from base; nil value = removed
	}{
		{name: "set value", update: "SET st = :v", vals: item{":v": s("bye")}, want: map[string]any{"st": "S:bye"}},
		{name: "set new attribute via name placeholder", update: "SET #s = :v", names: map[string]string{"#s": "status"},
			vals: item{":v": s("ok")}, want: map[string]any{"status": "S:ok"}},
		{name: "if_not_exists keeps existing", update: "SET n = if_not_exists(n, :v)", vals: item{":v": n("9")}, want: map[string]any{}},
		{name: "if_not_exists fills absent", update: "SET z = if_not_exists(z, :v)", vals: item{":v": n("9")}, want: map[string]any{"z": "N:9"}},
		{name: "list_append", update: "SET ls = list_append(ls, :v)", vals: item{":v": l(s("y"))},
			want: map[string]any{"ls": []any{"S:x", "N:1", "S:y"}}},
		{name: "list_append in front, from if_not_exists", update: "SET nl = list_append(:v, if_not_exists(nl, :e))",
			vals: item{":v": l(s("y")), ":e": l()}, want: map[string]any{"nl": []any{"S:y"}}},
		{name: "plus", update: "SET n = n + :v", vals: item{":v": n("2.5")}, want: map[string]any{"n": "N:7.5"}},
		{name: "minus to a whole number", update: "SET n = n - :v", vals: item{":v": n("0.5e1")}, want: map[string]any{"n": "N:0"}},
		{name: "plus of two values", update: "SET z = :a + :b", vals: item{":a": n("1"), ":b": n("-3")}, want: map[string]any{"z": "N:-2"}},
		{name: "set from another attribute", update: "SET z = st", want: map[string]any{"z": "S:hello"}},
		{name: "set swap sees the old item", update: "SET st = n, n = st", want: map[string]any{"st": "N:5", "n": "S:hello"}},
		{name: "remove", update: "REMOVE st, nothing", want: map[string]any{"st": nil}},
		{name: "add number to existing", update: "ADD n :v", vals: item{":v": n("10")}, want: map[string]any{"n": "N:15"}},
		{name: "add number to absent", update: "ADD z :v", vals: item{":v": n("1")}, want: map[string]any{"z": "N:1"}},
		{name: "add to a string set", update: "ADD #set :v", names: map[string]string{"#set": "set"},
			vals: item{":v": ss("b", "c")}, want: map[string]any{"set": "SS:a,b,c"}},
		{name: "add to a number set", update: "ADD ns :v", vals: item{":v": &types.AttributeValueMemberNS{Value: []string{"2.50", "3"}}},
			want: map[string]any{"ns": "NS:1,2.5,3"}},
		{name: "delete from a set", update: "DELETE #set :v", names: map[string]string{"#set": "set"},
			vals: item{":v": ss("a")}, want: map[string]any{"set": "SS:b"}},
		{name: "delete the whole set removes it", update: "DELETE #set :v", names: map[string]string{"#set": "set"},
			vals: item{":v": ss("a", "b")}, want: map[string]any{"set": nil}},
		{name: "clauses in any order, lower case", update: "remove st add n :one set z = :one",
			vals: item{":one": n("1")}, want: map[string]any{"st": nil, "n": "N:6", "z": "N:1"}},
		{name: "nested map path", update: "SET mp.deep.x = :v, mp.#new = :v", names: map[string]string{"#new": "new"},
			vals: item{":v": s("z")}, want: map[string]any{"mp": map[string]any{"in": "N:1", "new": "S:z", "deep": map[string]any{"x": "S:z"}}}},
		{name: "list index set and append past the end", update: "SET ls[0] = :v, ls[9] = :w",
			vals: item{":v": s("a"), ":w": s("end")}, want: map[string]any{"ls": []any{"S:a", "N:1", "S:end"}}},
		{name: "list index remove", update: "REMOVE ls[0]", want: map[string]any{"ls": []any{"N:1"}}},
		{name: "parenthesised value", update: "SET n = (n + :v)", vals: item{":v": n("1")}, want: map[string]any{"n": "N:6"}},
		{name: "parenthesised operand", update: "SET n = (n) + :v", vals: item{":v": n("1")}, want: map[string]any{"n": "N:6"}},
		{name: "numbers are canonical", update: "SET z = :v", vals: item{":v": n("001.2300")}, want: map[string]any{"z": "N:1.23"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := newDB(t)
			put(t, db, base)
			in := &dynamodb.UpdateItemInput{TableName: aws.String(tbl), Key: key("k"), UpdateExpression: aws.String(tt.update),
				ExpressionAttributeNames: tt.names, ExpressionAttributeValues: tt.vals}
			if _, err := db.UpdateItem(context.Background(), in); err != nil {
				t.Fatalf("UpdateItem(%q) = %v", tt.update, err)
			}
			want := plainItem(base)
			for k, v := range tt.want {
				if v == nil {
					delete(want, k)
				} else {
					want[k] = v
				}
			}
			if diff := cmp.Diff(want, get(t, db, "k")); diff != "" {
				t.Errorf("item after %q (-want +got):\n%s", tt.update, diff)
			}
		})
	}
}

func TestConditionExpression(t *testing.T) {
	tests := []struct {
		cond  string
		names map[string]string
		vals  item
		want  bool
	}{
		{cond: "attribute_exists(n)", want: true},
		{cond: "attribute_exists(z)", want: false},
		{cond: "attribute_not_exists(z)", want: true},
		{cond: "attribute_not_exists(#p)", names: map[string]string{"#p": "pk"}, want: false},
		{cond: "n = :v", vals: item{":v": n("5.0")}, want: true},
		{cond: "n = :v", vals: item{":v": s("5")}, want: false},
		{cond: "n <> :v", vals: item{":v": n("5")}, want: false},
		{cond: "z <> :v", vals: item{":v": n("5")}, want: true},
		{cond: "n < :v", vals: item{":v": n("10")}, want: true}, // numeric, not "10" < "5"
		{cond: "n <= :v", vals: item{":v": n("5")}, want: true},
		{cond: "n > :v", vals: item{":v": n("-1e2")}, want: true},
		{cond: "n >= :v", vals: item{":v": n("5.01")}, want: false},
		{cond: "z < :v", vals: item{":v": n("1")}, want: false},
		{cond: "n < :v", vals: item{":v": s("9")}, want: false},
		{cond: "st < :v", vals: item{":v": s("hellp")}, want: true},
		{cond: "st > :v", vals: item{":v": s("Zebra")}, want: true}, // byte order: 'h' > 'Z'
		{cond: "n BETWEEN :a AND :b", vals: item{":a": n("5"), ":b": n("6")}, want: true},
		{cond: "n BETWEEN :a AND :b", vals: item{":a": n("6"), ":b": n("7")}, want: false},
		{cond: "n IN (:a, :b)", vals: item{":a": n("1"), ":b": n("5")}, want: true},
		{cond: "st IN (:a)", vals: item{":a": s("nope")}, want: false},
		{cond: "NOT n = :v", vals: item{":v": n("5")}, want: false},
		{cond: "n = :v AND st = :s", vals: item{":v": n("5"), ":s": s("hello")}, want: true},
		{cond: "n = :v AND st = :s", vals: item{":v": n("5"), ":s": s("x")}, want: false},
		{cond: "n = :v OR st = :s", vals: item{":v": n("0"), ":s": s("hello")}, want: true},
		// AND binds tighter than OR: true OR (false AND false).
		{cond: "attribute_exists(n) OR attribute_exists(z) AND attribute_exists(y)", want: true},
		{cond: "(attribute_exists(n) OR attribute_exists(z)) AND attribute_exists(y)", want: false},
		{cond: "NOT (attribute_exists(z) OR attribute_exists(y))", want: true},
		{cond: "begins_with(st, :p)", vals: item{":p": s("he")}, want: true},
		{cond: "begins_with(st, :p)", vals: item{":p": s("lo")}, want: false},
		{cond: "contains(st, :p)", vals: item{":p": s("ell")}, want: true},
		{cond: "contains(#s, :p)", names: map[string]string{"#s": "set"}, vals: item{":p": s("b")}, want: true},
		{cond: "contains(ls, :p)", vals: item{":p": n("1")}, want: true},
		{cond: "contains(ns, :p)", vals: item{":p": n("2.50")}, want: true},
		{cond: "size(st) = :v", vals: item{":v": n("5")}, want: true},
		{cond: "size(ls) > :v", vals: item{":v": n("1")}, want: true},
		{cond: "size(mp) = :v", vals: item{":v": n("2")}, want: true},
		{cond: "size(z) >= :v", vals: item{":v": n("0")}, want: false},
		{cond: "attribute_type(n, :t)", vals: item{":t": s("N")}, want: true},
		{cond: "attribute_type(n, :t)", vals: item{":t": s("S")}, want: false},
		{cond: "mp.deep.x = :v", vals: item{":v": s("y")}, want: true},
		{cond: "ls[1] = :v", vals: item{":v": n("1")}, want: true},
		{cond: "ls[5] = :v", vals: item{":v": n("1")}, want: false},
		{cond: "(n) = :v", vals: item{":v": n("5")}, want: true},
		{cond: "t = :v", vals: item{":v": &types.AttributeValueMemberBOOL{Value: true}}, want: true},
		{cond: "ls = :v", vals: item{":v": l(s("x"), n("1"))}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.cond, func(t *testing.T) {
			db := newDB(t)
			put(t, db, base)
			_, err := db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{TableName: aws.String(tbl), Key: key("k"),
				ConditionExpression: aws.String(tt.cond), ExpressionAttributeNames: tt.names, ExpressionAttributeValues: tt.vals})
			var ccf *types.ConditionalCheckFailedException
			switch {
			case tt.want && err != nil:
				t.Errorf("condition %q: %v, want it to hold", tt.cond, err)
			case !tt.want && !errors.As(err, &ccf):
				t.Errorf("condition %q: %v, want ConditionalCheckFailedException", tt.cond, err)
			}
		})
	}
}

func TestValidationErrors(t *testing.T) {
	long := strings.Repeat("x", 2049)
	tests := []struct {
		name   string
		key    item
		update string
		cond   string
		names  map[string]string
		vals   item
		want   string // a part of the message
	}{
		{name: "unused name", update: "SET a = :v", names: map[string]string{"#x": "x"}, vals: item{":v": n("1")}, want: "unused in expressions"},
		{name: "unused value", update: "SET a = :v", vals: item{":v": n("1"), ":w": n("2")}, want: "unused in expressions"},
		{name: "unused across both expressions is fine only when used", update: "SET a = :v", cond: "a = :w",
			vals: item{":v": n("1"), ":w": n("2"), ":x": n("3")}, want: "keys: {:x}"},
		{name: "missing name", update: "SET #a = :v", vals: item{":v": n("1")}, want: "attribute name: #a"},
		{name: "missing value", update: "SET a = :v", want: "attribute value: :v"},
		{name: "empty names map", update: "SET a = :v", names: map[string]string{}, vals: item{":v": n("1")}, want: "must not be empty"},
		{name: "syntax: dangling operator", update: "SET a = :v +", vals: item{":v": n("1")}, want: "Syntax error"},
		{name: "syntax: bad character", update: "SET a = :v;", vals: item{":v": n("1")}, want: "Syntax error"},
		{name: "syntax: condition", update: "SET a = :v", cond: "a = = :v", vals: item{":v": n("1")}, want: "Syntax error"},
		{name: "empty expression", update: "", want: "can not be empty"},
		{name: "section twice", update: "SET a = :v SET b = :v", vals: item{":v": n("1")}, want: "only be used once"},
		{name: "reserved word", update: "SET status = :v", vals: item{":v": n("1")}, want: "reserved keyword"},
		{name: "unknown function", update: "SET a = nope(a, :v)", vals: item{":v": n("1")}, want: "Invalid function name"},
		{name: "overlapping paths", update: "SET a = :v REMOVE a", vals: item{":v": n("1")}, want: "overlap"},
		{name: "ADD a string", update: "ADD a :v", vals: item{":v": s("x")}, want: "operator: ADD"},
		{name: "plus a string", update: "SET a = a + :v", vals: item{":v": s("x")}, want: "operand type: S"},
		{name: "redundant parentheses", update: "SET a = :v", cond: "((a = :v))", vals: item{":v": n("1")}, want: "redundant parentheses"},
		{name: "function misused as operand", update: "SET a = :v", cond: "attribute_exists(a) = :v", vals: item{":v": n("1")}, want: "not allowed"},
		{name: "BETWEEN bounds reversed", update: "SET a = :a", cond: "a BETWEEN :b AND :a", vals: item{":a": n("1"), ":b": n("2")}, want: "upper bound"},
		{name: "key attribute in SET", update: "SET pk = :v", vals: item{":v": s("x")}, want: "part of the key"},
		{name: "key attribute in REMOVE", update: "REMOVE #p", names: map[string]string{"#p": "pk"}, want: "part of the key"},
		{name: "empty string key", key: key(""), update: "SET a = :v", vals: item{":v": n("1")}, want: "empty string"},
		{name: "key over 2048 bytes", key: key(long), update: "SET a = :v", vals: item{":v": n("1")}, want: "2048"},
		{name: "wrong key attribute", key: item{"id": s("x")}, update: "SET a = :v", vals: item{":v": n("1")}, want: "does not match the schema"},
		{name: "wrong key type", key: item{"pk": n("1")}, update: "SET a = :v", vals: item{":v": n("1")}, want: "does not match the schema"},
		{name: "item over 400 KB", update: "SET a = :v", vals: item{":v": s(strings.Repeat("x", memdb.MaxItemSize))}, want: "maximum allowed size"},
		{name: "plus of an absent attribute", update: "SET a = nothing + :v", vals: item{":v": n("1")}, want: "does not exist"},
		{name: "ADD to a string attribute", update: "ADD st :v", vals: item{":v": n("1")}, want: "incorrect data type"},
		{name: "invalid number", update: "SET a = :v", vals: item{":v": n("1x")}, want: "numeric"},
		{name: "empty set", update: "SET a = :v", vals: item{":v": ss()}, want: "may not be empty"},
		{name: "path through a scalar", update: "SET st.x = :v", vals: item{":v": n("1")}, want: "invalid for update"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := newDB(t)
			put(t, db, item{"pk": s("k"), "st": s("x")})
			k := tt.key
			if k == nil {
				k = key("k")
			}
			in := &dynamodb.UpdateItemInput{TableName: aws.String(tbl), Key: k, UpdateExpression: aws.String(tt.update),
				ExpressionAttributeNames: tt.names, ExpressionAttributeValues: tt.vals}
			if tt.cond != "" {
				in.ConditionExpression = aws.String(tt.cond)
			}
			_, err := db.UpdateItem(context.Background(), in)
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" || !strings.Contains(ae.ErrorMessage(), tt.want) {
				t.Fatalf("UpdateItem = %v, want a ValidationException about %q", err, tt.want)
			}
			if diff := cmp.Diff(map[string]any{"pk": "S:k", "st": "S:x"}, get(t, db, "k")); diff != "" {
				t.Errorf("a rejected update changed the item (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReturnValues(t *testing.T) {
	tests := []struct {
		rv   types.ReturnValue
		want map[string]any
	}{
		{types.ReturnValueNone, nil},
		{"", nil},
		{types.ReturnValueAllNew, map[string]any{"pk": "S:k", "a": "N:2", "b": "S:x", "c": "S:new"}},
		{types.ReturnValueAllOld, map[string]any{"pk": "S:k", "a": "N:1", "b": "S:x"}},
		{types.ReturnValueUpdatedNew, map[string]any{"a": "N:2", "c": "S:new"}},
		{types.ReturnValueUpdatedOld, map[string]any{"a": "N:1"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.rv), func(t *testing.T) {
			db := newDB(t)
			put(t, db, item{"pk": s("k"), "a": n("1"), "b": s("x")})
			out, err := db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{TableName: aws.String(tbl), Key: key("k"),
				UpdateExpression: aws.String("SET c = :c ADD a :one"), ReturnValues: tt.rv,
				ExpressionAttributeValues: item{":c": s("new"), ":one": n("1")}})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, plainItem(out.Attributes)); diff != "" {
				t.Errorf("Attributes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUpdateCreatesItem(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	out, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(tbl), Key: key("new"),
		UpdateExpression: aws.String("ADD c :one"), ConditionExpression: aws.String("attribute_not_exists(pk)"),
		ExpressionAttributeValues: item{":one": n("1")}, ReturnValues: types.ReturnValueAllOld})
	if err != nil || out.Attributes != nil {
		t.Fatalf("UpdateItem of an absent item = %v, %v; want no old attributes", out, err)
	}
	if diff := cmp.Diff(map[string]any{"pk": "S:new", "c": "N:1"}, get(t, db, "new")); diff != "" {
		t.Errorf("created item (-want +got):\n%s", diff)
	}
	// A failed condition creates nothing, and can return the item.
	_, err = db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(tbl), Key: key("new"),
		UpdateExpression: aws.String("ADD c :one"), ConditionExpression: aws.String("attribute_not_exists(pk)"),
		ExpressionAttributeValues: item{":one": n("1")}, ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld})
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		t.Fatalf("second create = %v, want ConditionalCheckFailedException", err)
	}
	if diff := cmp.Diff(map[string]any{"pk": "S:new", "c": "N:1"}, plainItem(ccf.Item)); diff != "" {
		t.Errorf("ConditionalCheckFailedException.Item (-want +got):\n%s", diff)
	}
}

func TestTablesAndOperations(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	var inUse *types.ResourceInUseException
	if _, err := db.CreateTable(ctx, createInput(tbl)); !errors.As(err, &inUse) {
		t.Errorf("CreateTable of an existing table = %v, want ResourceInUseException", err)
	}
	var nf *types.ResourceNotFoundException
	if _, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("nope"), Key: key("k")}); !errors.As(err, &nf) {
		t.Errorf("GetItem on an unknown table = %v, want ResourceNotFoundException", err)
	}
	if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("nope"), Key: key("k")}); !errors.As(err, &nf) {
		t.Errorf("UpdateItem on an unknown table = %v, want ResourceNotFoundException", err)
	}
	put(t, db, item{"pk": s("a"), "v": n("1")})
	_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tbl), Item: item{"pk": s("a"), "v": n("2")},
		ConditionExpression: aws.String("attribute_not_exists(pk)")})
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		t.Errorf("conditional PutItem over an item = %v, want ConditionalCheckFailedException", err)
	}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tbl), Item: item{"v": n("2")}}); code(err) != "ValidationException" {
		t.Errorf("PutItem without the key = %v, want ValidationException", err)
	}
	put(t, db, item{"pk": s("b"), "v": n("2")})
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(tbl), Key: key("b"), ProjectionExpression: aws.String("#v, nothing"),
		ExpressionAttributeNames: map[string]string{"#v": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"v": "N:2"}, plainItem(out.Item)); diff != "" {
		t.Errorf("projected GetItem (-want +got):\n%s", diff)
	}
	scan, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(tbl), FilterExpression: aws.String("v > :one"),
		ExpressionAttributeValues: item{":one": n("1")}})
	if err != nil || scan.Count != 1 || scan.ScannedCount != 2 {
		t.Fatalf("Scan = %+v, %v; want 1 of 2", scan, err)
	}
	page, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(tbl), Limit: aws.Int32(1)})
	if err != nil || len(page.Items) != 1 || page.LastEvaluatedKey == nil {
		t.Fatalf("first page = %+v, %v", page, err)
	}
	rest, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(tbl), ExclusiveStartKey: page.LastEvaluatedKey})
	if err != nil || len(rest.Items) != 1 || plain(rest.Items[0]["pk"]) == plain(page.Items[0]["pk"]) {
		t.Fatalf("second page = %+v, %v", rest, err)
	}
	_, err = db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(tbl), Key: key("a"),
		ConditionExpression: aws.String("v = :two"), ExpressionAttributeValues: item{":two": n("2")}})
	if !errors.As(err, &ccf) {
		t.Errorf("conditional DeleteItem = %v, want ConditionalCheckFailedException", err)
	}
	del, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(tbl), Key: key("a"), ReturnValues: types.ReturnValueAllOld})
	if err != nil || get(t, db, "a") != nil {
		t.Fatalf("DeleteItem = %v; item %v", err, get(t, db, "a"))
	}
	if diff := cmp.Diff(map[string]any{"pk": "S:a", "v": "N:1"}, plainItem(del.Attributes)); diff != "" {
		t.Errorf("DeleteItem ALL_OLD (-want +got):\n%s", diff)
	}
}

// TestNoAliasing: neither the caller's input nor a returned item shares
// memory with the stored item.
func TestNoAliasing(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	in := item{"pk": s("k"), "ls": l(s("a")), "mp": m(item{"x": s("1")})}
	put(t, db, in)
	in["ls"].(*types.AttributeValueMemberL).Value[0] = s("changed")
	in["mp"].(*types.AttributeValueMemberM).Value["x"] = s("changed")
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(tbl), Key: key("k")})
	if err != nil {
		t.Fatal(err)
	}
	out.Item["ls"].(*types.AttributeValueMemberL).Value[0] = s("changed too")
	delete(out.Item, "mp")
	want := map[string]any{"pk": "S:k", "ls": []any{"S:a"}, "mp": map[string]any{"x": "S:1"}}
	if diff := cmp.Diff(want, get(t, db, "k")); diff != "" {
		t.Errorf("stored item changed through an alias (-want +got):\n%s", diff)
	}
	vals := item{":v": l(s("b"))}
	up, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(tbl), Key: key("k"),
		UpdateExpression: aws.String("SET ls = :v"), ExpressionAttributeValues: vals, ReturnValues: types.ReturnValueAllNew})
	if err != nil {
		t.Fatal(err)
	}
	vals[":v"].(*types.AttributeValueMemberL).Value[0] = s("changed")
	up.Attributes["ls"].(*types.AttributeValueMemberL).Value[0] = s("changed")
	want["ls"] = []any{"S:b"}
	if diff := cmp.Diff(want, get(t, db, "k")); diff != "" {
		t.Errorf("stored item changed through an update's alias (-want +got):\n%s", diff)
	}
}

func TestFail(t *testing.T) {
	ctx := context.Background()
	db := newDB(t)
	throttled := &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}
	var calls []string
	db.Fail(func(op, key string) error {
		calls = append(calls, op+" "+key)
		if op == "UpdateItem" && key == "bad" {
			return throttled
		}
		return nil
	})
	_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(tbl), Key: key("bad"),
		UpdateExpression: aws.String("SET a = :v"), ExpressionAttributeValues: item{":v": n("1")}})
	if !errors.Is(err, throttled) {
		t.Errorf("UpdateItem = %v, want the injected error", err)
	}
	if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(tbl), Key: key("good"),
		UpdateExpression: aws.String("SET a = :v"), ExpressionAttributeValues: item{":v": n("1")}}); err != nil {
		t.Errorf("UpdateItem of another key = %v", err)
	}
	db.Fail(nil)
	if got := get(t, db, "bad"); got != nil {
		t.Errorf("a failed call wrote %v", got)
	}
	if diff := cmp.Diff([]string{"UpdateItem bad", "UpdateItem good"}, calls); diff != "" {
		t.Errorf("hook calls (-want +got):\n%s", diff)
	}
}

// TestConcurrentAdds: one mutex makes every update atomic.
func TestConcurrentAdds(t *testing.T) {
	db := newDB(t)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			_, err := db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{TableName: aws.String(tbl), Key: key("c"),
				UpdateExpression: aws.String("ADD c :one"), ExpressionAttributeValues: item{":one": n("1")}})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if diff := cmp.Diff(map[string]any{"pk": "S:c", "c": "N:50"}, get(t, db, "c"), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("after 50 concurrent ADDs (-want +got):\n%s", diff)
	}
}
