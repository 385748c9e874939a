package memdb_test

import (
	"context"
	"errors"
	"regexp"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/mmsgate/mmsgate/internal/memdb"
)

var placeholders = regexp.MustCompile(`[#:][0-9A-Za-z_]+`)

// FuzzUpdateExpression: the parser never panics; whatever parses prints
// back to text that parses to the same expression; and UpdateItem answers
// any expression with success or an API error, never a panic.
func FuzzUpdateExpression(f *testing.F) {
	for _, s := range []string{
		"SET #st = :inprog, #lease = :lease ADD #att :one",
		"SET #c = :lease, #upd = :now REMOVE #p, #c",
		"SET h = list_append(if_not_exists(h, :e), :h)",
		"SET a.b[2].c = (a.b[1].c + :n) remove x[0] ADD s :s DELETE t :t",
		"SET a = (b) - :c",
		"set a=:a,b=:b",
		"SET a = :v +",
	} {
		f.Add(s)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, expr string) {
		u, err := memdb.ParseUpdate(expr)
		if err == nil {
			again, err := memdb.ParseUpdate(u.String())
			if err != nil {
				t.Fatalf("ParseUpdate(%q) printed as %q, which does not parse: %v", expr, u.String(), err)
			}
			if diff := cmp.Diff(u, again); diff != "" {
				t.Fatalf("ParseUpdate(%q) printed as %q parses differently (-first +second):\n%s", expr, u.String(), diff)
			}
		}
		// Define every placeholder the text mentions, so that evaluation runs.
		names, vals := map[string]string{}, map[string]types.AttributeValue{}
		for _, p := range placeholders.FindAllString(expr, -1) {
			if p[0] == '#' {
				names[p] = "a" + p[1:]
			} else {
				vals[p] = &types.AttributeValueMemberN{Value: "1"}
			}
		}
		db := memdb.New()
		if _, err := db.CreateTable(ctx, createInput(tbl)); err != nil {
			t.Fatal(err)
		}
		in := &dynamodb.UpdateItemInput{TableName: aws.String(tbl), Key: key("k"), UpdateExpression: aws.String(expr)}
		if len(names) > 0 {
			in.ExpressionAttributeNames = names
		}
		if len(vals) > 0 {
			in.ExpressionAttributeValues = vals
		}
		for range 2 { // the second run sees the item the first created
			_, err = db.UpdateItem(ctx, in)
			var ae smithy.APIError
			if err != nil && !errors.As(err, &ae) {
				t.Fatalf("UpdateItem(%q) = %v, not an API error", expr, err)
			}
		}
	})
}

// FuzzConditionExpression is FuzzUpdateExpression's round trip for
// conditions.
func FuzzConditionExpression(f *testing.F) {
	for _, s := range []string{
		"attribute_not_exists(#d) AND attribute_not_exists(#p) AND (attribute_not_exists(#rank) OR #rank < :r)",
		"attribute_not_exists(#pk) OR #st = :retry OR (#st = :inprog AND #lease < :nowms)",
		"NOT (a BETWEEN :x AND :y) OR b IN (:a, :b) AND size(c) > :n",
		"begins_with(a.b[0], :p) AND contains(s, :v) OR attribute_type(x, :t)",
		"(a) = :v",
		"((a = :v))",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		c, err := memdb.ParseCond(expr)
		if err != nil {
			return
		}
		again, err := memdb.ParseCond(c.String())
		if err != nil {
			t.Fatalf("ParseCond(%q) printed as %q, which does not parse: %v", expr, c.String(), err)
		}
		if diff := cmp.Diff(c, again); diff != "" {
			t.Fatalf("ParseCond(%q) printed as %q parses differently (-first +second):\n%s", expr, c.String(), diff)
		}
	})
}
