package memdb_test

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mmsgate/mmsgate/internal/dynalite"
	"github.com/mmsgate/mmsgate/internal/localenv"
	"github.com/mmsgate/mmsgate/internal/memdb"
)

// api is what the conformance sequences call, on memdb and on a real
// client alike.
type api interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

var _ api = (*memdb.DB)(nil)

// dynaliteAPI starts dynalite, or skips: -short runs need no Node.
func dynaliteAPI(t *testing.T) api {
	t.Helper()
	if testing.Short() {
		t.Skip("dynalite half skipped in -short mode")
	}
	root, err := dynalite.Root()
	if err != nil {
		t.Skip(err)
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules", "dynalite", "cli.js")); err != nil {
		t.Skip("dynalite is not installed")
	}
	env, err := localenv.Start(context.Background(), localenv.Options{Servers: &servers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(env.Close)
	return env.DynamoDB()
}

// outcome is what a call returned, in comparable form.
type outcome struct {
	Code  string
	Attrs map[string]any
}

// op is one call; desc names it in failures.
type op struct {
	desc string
	do   func(ctx context.Context, db api) outcome
}

func update(in *dynamodb.UpdateItemInput) op {
	desc := fmt.Sprintf("UpdateItem key %v update %q condition %q names %v values %v return %s", plainItem(in.Key)["pk"],
		aws.ToString(in.UpdateExpression), aws.ToString(in.ConditionExpression), in.ExpressionAttributeNames, plainItem(in.ExpressionAttributeValues), in.ReturnValues)
	return op{desc, func(ctx context.Context, db api) outcome {
		c := *in
		out, err := db.UpdateItem(ctx, &c)
		if err != nil {
			return outcome{Code: code(err)}
		}
		return outcome{Attrs: plainItem(out.Attributes)}
	}}
}

func getOp(table, pk string) op {
	return op{"GetItem " + pk, func(ctx context.Context, db api) outcome {
		out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key(pk), ConsistentRead: aws.Bool(true)})
		if err != nil {
			return outcome{Code: code(err)}
		}
		return outcome{Attrs: plainItem(out.Item)}
	}}
}

func putOp(in *dynamodb.PutItemInput) op {
	return op{fmt.Sprintf("PutItem %v condition %q", plainItem(in.Item), aws.ToString(in.ConditionExpression)), func(ctx context.Context, db api) outcome {
		out, err := db.PutItem(ctx, in)
		if err != nil {
			return outcome{Code: code(err)}
		}
		return outcome{Attrs: plainItem(out.Attributes)}
	}}
}

func deleteOp(in *dynamodb.DeleteItemInput) op {
	return op{fmt.Sprintf("DeleteItem %v condition %q", plainItem(in.Key), aws.ToString(in.ConditionExpression)), func(ctx context.Context, db api) outcome {
		out, err := db.DeleteItem(ctx, in)
		if err != nil {
			return outcome{Code: code(err)}
		}
		return outcome{Attrs: plainItem(out.Attributes)}
	}}
}

func createOp(name string) op {
	return op{"CreateTable " + name, func(ctx context.Context, db api) outcome {
		_, err := db.CreateTable(ctx, createInput(name))
		if c, ok := db.(*dynamodb.Client); ok && err == nil {
			// A new table is CREATING for a moment on dynalite, as on DynamoDB.
			w := dynamodb.NewTableExistsWaiter(c, func(o *dynamodb.TableExistsWaiterOptions) { o.MinDelay = 10 * time.Millisecond })
			if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 10*time.Second); err != nil {
				return outcome{Code: "table not active: " + err.Error()}
			}
		}
		return outcome{Code: code(err)}
	}}
}

const ctable = "conformance"

// script is a fixed sequence covering the features pkg/store relies on and
// the errors memdb claims to return.
func script() []op {
	upd := func(pk, u, c string, names map[string]string, vals item, rv types.ReturnValue) op {
		in := &dynamodb.UpdateItemInput{TableName: aws.String(ctable), Key: key(pk), ExpressionAttributeNames: names,
			ExpressionAttributeValues: vals, ReturnValues: rv}
		if u != "" {
			in.UpdateExpression = aws.String(u)
		}
		if c != "" {
			in.ConditionExpression = aws.String(c)
		}
		return update(in)
	}
	one := item{":one": n("1")}
	return []op{
		createOp(ctable),
		createOp(ctable),
		getOp("missing-table", "x"),
		upd("a", "SET st = :s, #c = if_not_exists(#c, :now) ADD att :one", "attribute_not_exists(pk) OR st = :r",
			map[string]string{"#c": "created"}, item{":s": s("INPROGRESS"), ":now": s("t0"), ":one": n("1"), ":r": s("RETRY")}, types.ReturnValueAllNew),
		upd("a", "SET st = :s ADD att :one", "attribute_not_exists(pk) OR st = :r", nil,
			item{":s": s("INPROGRESS"), ":one": n("1"), ":r": s("RETRY")}, types.ReturnValueAllNew),
		upd("a", "SET st = :r REMOVE lease", "st = :s", nil, item{":s": s("INPROGRESS"), ":r": s("RETRY")}, types.ReturnValueUpdatedOld),
		upd("a", "SET h = list_append(if_not_exists(h, :e), :h), n = :n", "", nil, item{":e": l(), ":h": l(s("k1")), ":n": n("10.50")}, types.ReturnValueUpdatedNew),
		upd("a", "SET h = list_append(h, :h), n = n - :d", "n BETWEEN :lo AND :hi", nil,
			item{":h": l(s("k2")), ":d": n("0.5"), ":lo": n("10"), ":hi": n("11")}, types.ReturnValueAllOld),
		upd("a", "ADD tags :t", "size(h) = :two AND begins_with(st, :p)", nil, item{":t": ss("x", "y"), ":two": n("2"), ":p": s("RE")}, types.ReturnValueAllNew),
		upd("a", "DELETE tags :t", "contains(tags, :x) AND NOT attribute_type(n, :S)", nil, item{":t": ss("x"), ":x": s("x"), ":S": s("S")}, types.ReturnValueAllNew),
		upd("a", "SET n = :n", "n IN (:a, :b)", nil, item{":n": n("1"), ":a": n("3"), ":b": n("4")}, ""),
		upd("a", "SET n = :n", "n < :v", nil, item{":n": n("1"), ":v": n("9")}, ""), // 10 < 9 numerically false
		upd("a", "SET m = :m", "", nil, item{":m": m(item{"x": n("1")})}, ""),
		upd("a", "SET m.y = :v, m.x = m.x + :one", "m.x = :one", nil, item{":v": s("v"), ":one": n("1")}, types.ReturnValueUpdatedNew),
		// Validation errors.
		upd("a", "SET st = :s", "", map[string]string{"#x": "x"}, item{":s": s("x")}, ""),
		upd("a", "SET st = :s", "", nil, item{":s": s("x"), ":unused": s("y")}, ""),
		upd("a", "SET #st = :s", "", nil, item{":s": s("x")}, ""),
		upd("a", "SET st = :s", "", nil, nil, ""),
		upd("a", "SET st = :s +", "", nil, item{":s": s("x")}, ""),
		upd("a", "SET st = :s", "st = = :s", nil, item{":s": s("x")}, ""),
		upd("a", "SET status = :s", "", nil, item{":s": s("x")}, ""),
		upd("a", "SET pk = :s", "", nil, item{":s": s("x")}, ""),
		upd("a", "SET st = :s REMOVE st", "", nil, item{":s": s("x")}, ""),
		upd("a", "SET q = nothing + :one", "", nil, one, ""),
		upd("a", "ADD st :one", "", nil, one, ""),
		upd("a", "SET st = :one", "((st = :one))", nil, one, ""),
		upd("", "SET st = :one", "", nil, one, ""),
		upd(strings.Repeat("k", 2049), "SET st = :one", "", nil, one, ""),
		upd(strings.Repeat("k", 2048), "SET st = :one", "", nil, one, ""),
		upd("big", "SET st = :s", "", nil, item{":s": s(strings.Repeat("x", 410*1024))}, ""),
		upd("a", "SET st = :one", "", map[string]string{}, one, ""),
		// The condition fails before the update's own errors are found.
		upd("a", "SET q = nothing + :one", "attribute_not_exists(pk)", nil, one, ""),
		putOp(&dynamodb.PutItemInput{TableName: aws.String(ctable), Item: item{"pk": s("p"), "v": n("1e2")}, ReturnValues: types.ReturnValueAllOld}),
		putOp(&dynamodb.PutItemInput{TableName: aws.String(ctable), Item: item{"pk": s("p"), "v": n("2")},
			ConditionExpression: aws.String("attribute_not_exists(pk)")}),
		putOp(&dynamodb.PutItemInput{TableName: aws.String(ctable), Item: item{"pk": s("p"), "v": n("2")}, ReturnValues: types.ReturnValueAllOld}),
		deleteOp(&dynamodb.DeleteItemInput{TableName: aws.String(ctable), Key: key("p"), ConditionExpression: aws.String("v > :v"),
			ExpressionAttributeValues: item{":v": n("2")}}),
		deleteOp(&dynamodb.DeleteItemInput{TableName: aws.String(ctable), Key: key("p"), ReturnValues: types.ReturnValueAllOld}),
		getOp(ctable, "a"),
		getOp(ctable, "p"),
		getOp(ctable, strings.Repeat("k", 2048)),
	}
}

// randomOps generates conditional updates over a few keys and attributes,
// mostly valid, some failing their condition or DynamoDB's checks.
func randomOps(table string, seed int64, count int) []op {
	r := rand.New(rand.NewSource(seed))
	pick := func(xs ...string) string { return xs[r.Intn(len(xs))] }
	nums := []string{"0", "1", "2", "-1", "1.5", "10", "2.50", "1e1", "-0.25"}
	strs := []string{"", "a", "ab", "b", "ba", "RETRY", "INPROGRESS"}
	var ops []op
	for range count {
		vals := item{}
		names := map[string]string{}
		val := func(v types.AttributeValue) string {
			k := fmt.Sprintf(":v%d", len(vals))
			vals[k] = v
			return k
		}
		num := func() string { return val(n(pick(nums...))) }
		str := func() string { return val(s(pick(strs...))) }
		// Stored strings are never "": dynalite's size() and IN take an empty
		// string for an absent attribute (JavaScript falsiness; DynamoDB and
		// memdb do not), so only conditions compare with "".
		stored := func() string { return val(s(pick(strs[1:]...))) }
		name := func(a string) string {
			if r.Intn(2) == 0 {
				return a
			}
			k := fmt.Sprintf("#n%d", len(names))
			names[k] = a
			return k
		}
		attr := func() string { return pick("n1", "n2", "st", "ls", "tags") }
		atom := func() string {
			switch r.Intn(10) {
			case 0:
				return pick("attribute_exists", "attribute_not_exists") + "(" + name(attr()) + ")"
			case 1, 2:
				return name(pick("n1", "n2")) + " " + pick("=", "<>", "<", "<=", ">", ">=") + " " + num()
			case 3:
				return name("st") + " " + pick("=", "<>", "<", ">=") + " " + str()
			case 4:
				lo, hi := pick(nums...), pick(nums...)
				return name(pick("n1", "n2")) + " BETWEEN " + val(n(lo)) + " AND " + val(n(hi)) // reversed bounds are a ValidationException
			case 5:
				return name(pick("n1", "st")) + " IN (" + num() + ", " + str() + ")"
			case 6:
				return "begins_with(" + name("st") + ", " + str() + ")"
			case 7:
				return "contains(" + name(pick("tags", "ls", "st")) + ", " + str() + ")"
			case 8:
				return "size(" + name(pick("ls", "st", "tags")) + ") " + pick("=", ">", "<=") + " " + val(n(pick("0", "1", "2", "3")))
			default:
				return "attribute_type(" + name(attr()) + ", " + val(s(pick("N", "S", "L", "SS"))) + ")"
			}
		}
		var cond func(depth int) string
		cond = func(depth int) string {
			if depth == 0 || r.Intn(3) == 0 {
				return atom()
			}
			switch r.Intn(3) {
			case 0:
				return cond(depth-1) + " AND " + cond(depth-1)
			case 1:
				return "(" + cond(depth-1) + " OR " + cond(depth-1) + ")"
			default:
				return "NOT (" + cond(depth-1) + ")"
			}
		}
		clauses := map[string][]string{}
		used := map[string]bool{}
		for range 1 + r.Intn(3) {
			a := pick("n1", "n2", "st", "ls", "tags")
			if used[a] && r.Intn(4) > 0 { // an occasional overlap is a ValidationException
				continue
			}
			used[a] = true
			switch a {
			case "n1", "n2":
				switch r.Intn(5) {
				case 0:
					clauses["SET"] = append(clauses["SET"], name(a)+" = "+num())
				case 1:
					clauses["SET"] = append(clauses["SET"], name(a)+" = "+name(a)+" "+pick("+", "-")+" "+num()) // absent: ValidationException
				case 2:
					clauses["SET"] = append(clauses["SET"], name(a)+" = if_not_exists("+name(a)+", "+num()+") + "+num())
				case 3:
					clauses["ADD"] = append(clauses["ADD"], name(a)+" "+num())
				default:
					clauses["REMOVE"] = append(clauses["REMOVE"], name(a))
				}
			case "st":
				if r.Intn(3) > 0 {
					clauses["SET"] = append(clauses["SET"], name(a)+" = "+stored())
				} else {
					clauses["REMOVE"] = append(clauses["REMOVE"], name(a))
				}
			case "ls":
				clauses["SET"] = append(clauses["SET"], name(a)+" = list_append(if_not_exists("+name(a)+", "+val(l())+"), "+val(l(s(pick(strs[1:]...))))+")")
			case "tags":
				set := ss(pick("x", "y"), "z")
				if r.Intn(5) == 0 {
					set = ss("x") // after SET tags = :s below, ADD to a string: ValidationException
				}
				switch r.Intn(4) {
				case 0, 1:
					clauses["ADD"] = append(clauses["ADD"], name(a)+" "+val(set))
				case 2:
					clauses["DELETE"] = append(clauses["DELETE"], name(a)+" "+val(set))
				default:
					clauses["SET"] = append(clauses["SET"], name(a)+" = "+stored())
				}
			}
		}
		var parts []string
		for _, k := range r.Perm(4) {
			kind := []string{"SET", "REMOVE", "ADD", "DELETE"}[k]
			if len(clauses[kind]) > 0 {
				parts = append(parts, kind+" "+strings.Join(clauses[kind], ", "))
			}
		}
		in := &dynamodb.UpdateItemInput{TableName: aws.String(table), Key: key(pick("k0", "k1", "k2")),
			UpdateExpression: aws.String(strings.Join(parts, " ")),
			ReturnValues:     types.ReturnValue(pick("NONE", "ALL_NEW", "ALL_OLD", "UPDATED_NEW", "UPDATED_OLD"))}
		if r.Intn(4) > 0 {
			in.ConditionExpression = aws.String(cond(2))
		}
		if len(names) > 0 {
			in.ExpressionAttributeNames = names
		}
		if len(vals) > 0 {
			in.ExpressionAttributeValues = vals
		}
		ops = append(ops, update(in))
	}
	for _, k := range []string{"k0", "k1", "k2"} {
		ops = append(ops, getOp(table, k))
	}
	return ops
}

// TestConformance runs the same operations on memdb and on dynalite and
// requires the same outcome from every one: error code, returned
// attributes and, through the final reads, the items.
func TestConformance(t *testing.T) {
	seqs := map[string][]op{"script": script()}
	for seed := int64(1); seed <= 8; seed++ {
		table := fmt.Sprintf("random-%d", seed) // dynalite deletes tables lazily: one table each
		seqs["random "+table] = append([]op{createOp(table)}, randomOps(table, seed, 200)...)
	}
	ctx := context.Background()
	run := func(db api, ops []op) []outcome {
		out := make([]outcome, len(ops))
		for i, o := range ops {
			out[i] = o.do(ctx, db)
		}
		return out
	}
	t.Run("memdb alone", func(t *testing.T) {
		// Without dynalite, still require that memdb answers every random
		// operation with success or a known API error.
		for name, ops := range seqs {
			codes := map[string]int{}
			for i, o := range run(memdb.New(), ops) {
				codes[o.Code]++
				switch o.Code {
				case "", "ConditionalCheckFailedException", "ValidationException", "ResourceInUseException", "ResourceNotFoundException":
				default:
					t.Errorf("%s op %d: unexpected error %q", name, i, o.Code)
				}
			}
			// A generator whose updates all fail (or all pass) proves little.
			if codes[""] < 10 || codes["ConditionalCheckFailedException"] < 5 || codes["ValidationException"] < 3 {
				t.Errorf("%s: outcomes %v; want a mix of successes, failed conditions and validation errors", name, codes)
			}
		}
	})
	t.Run("memdb vs dynalite", func(t *testing.T) {
		real := dynaliteAPI(t)
		for name, ops := range seqs {
			t.Run(name, func(t *testing.T) {
				want, got := run(real, ops), run(memdb.New(), ops)
				for i := range ops {
					if diff := cmp.Diff(want[i], got[i], cmpopts.EquateEmpty()); diff != "" {
						t.Errorf("op %d %s: dynalite (-) and memdb (+) disagree:\n%s", i, ops[i].desc, diff)
					}
				}
			})
		}
	})
}
