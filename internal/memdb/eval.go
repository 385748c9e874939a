package memdb

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// env resolves one request's placeholders and records which were used:
// DynamoDB rejects a request that defines a placeholder it does not use.
type env struct {
	names map[string]string
	vals  map[string]types.AttributeValue
	usedN map[string]bool
	usedV map[string]bool
}

var placeholder = regexp.MustCompile(`^[#:][0-9a-zA-Z_]+$`)

// newEnv validates ExpressionAttributeNames and ExpressionAttributeValues.
func newEnv(names map[string]string, vals map[string]types.AttributeValue) (*env, string) {
	e := &env{names: names, vals: map[string]types.AttributeValue{}, usedN: map[string]bool{}, usedV: map[string]bool{}}
	if names != nil && len(names) == 0 {
		return nil, "ExpressionAttributeNames must not be empty"
	}
	for k := range names {
		if !placeholder.MatchString(k) || k[0] != '#' {
			return nil, fmt.Sprintf("ExpressionAttributeNames contains invalid key: Syntax error; key: %q", k)
		}
	}
	if vals != nil && len(vals) == 0 {
		return nil, "ExpressionAttributeValues must not be empty"
	}
	for _, k := range sortedKeys(vals) {
		if !placeholder.MatchString(k) || k[0] != ':' {
			return nil, fmt.Sprintf("ExpressionAttributeValues contains invalid key: Syntax error; key: %q", k)
		}
		c, msg := clean(vals[k])
		if msg != "" {
			return nil, "ExpressionAttributeValues contains invalid value: " + msg + " for key " + k
		}
		e.vals[k] = c
	}
	return e, ""
}

// unused reports the first placeholder no expression used.
func (e *env) unused() string {
	var n, v []string
	for k := range e.names {
		if !e.usedN[k] {
			n = append(n, k)
		}
	}
	for k := range e.vals {
		if !e.usedV[k] {
			v = append(v, k)
		}
	}
	sort.Strings(n)
	sort.Strings(v)
	switch {
	case len(n) > 0:
		return "Value provided in ExpressionAttributeNames unused in expressions: keys: {" + strings.Join(n, ", ") + "}"
	case len(v) > 0:
		return "Value provided in ExpressionAttributeValues unused in expressions: keys: {" + strings.Join(v, ", ") + "}"
	}
	return ""
}

// path resolves #placeholders; bare names must not be reserved words.
func (e *env) path(p Path) (Path, string) {
	out := make(Path, len(p))
	for i, el := range p {
		out[i] = el
		switch {
		case el.IsIndex:
		case strings.HasPrefix(el.Name, "#"):
			n, ok := e.names[el.Name]
			if !ok {
				return nil, "An expression attribute name used in the document path is not defined; attribute name: " + el.Name
			}
			e.usedN[el.Name] = true
			out[i].Name = n
		case reserved[strings.ToUpper(el.Name)]:
			return nil, "Attribute name is a reserved keyword; reserved keyword: " + el.Name
		}
	}
	return out, ""
}

func (e *env) value(name string) (types.AttributeValue, string) {
	v, ok := e.vals[name]
	if !ok {
		return nil, "An expression attribute value used in expression is not defined; attribute value: " + name
	}
	e.usedV[name] = true
	return v, ""
}

// rop is an Operand with its placeholders resolved.
type rop struct {
	kind OperandKind
	path Path
	val  types.AttributeValue
	fn   string
	args []*rop
}

func (e *env) operand(o *Operand) (*rop, string) {
	r := &rop{kind: o.Kind, fn: o.Fn}
	var msg string
	switch o.Kind {
	case OpPath:
		r.path, msg = e.path(o.Path)
	case OpValue:
		r.val, msg = e.value(o.Value)
	default:
		for _, a := range o.Args {
			ra, m := e.operand(a)
			if m != "" {
				return nil, m
			}
			r.args = append(r.args, ra)
		}
	}
	return r, msg
}

// ract is a resolved update action.
type ract struct {
	kind string
	path Path
	val  *rop
}

var arity = map[string]int{
	"if_not_exists": 2, "list_append": 2,
	"attribute_exists": 1, "attribute_not_exists": 1, "attribute_type": 2, "begins_with": 2, "contains": 2, "size": 1,
}

var updateFuncs = map[string]bool{"if_not_exists": true, "list_append": true}

// checkUpdate resolves u and applies DynamoDB's static checks.
func (e *env) checkUpdate(u *Update) ([]ract, string) {
	var acts []ract
	for _, c := range u.Clauses {
		for _, a := range c.Actions {
			p, msg := e.path(a.Path)
			if msg != "" {
				return nil, msg
			}
			for _, q := range acts {
				if msg := overlap(q.path, p); msg != "" {
					return nil, msg
				}
			}
			ra := ract{kind: c.Kind, path: p}
			if a.Value != nil {
				if ra.val, msg = e.operand(a.Value); msg != "" {
					return nil, msg
				}
			}
			switch c.Kind {
			case "SET":
				msg = checkSetValue(ra.val)
			case "ADD", "DELETE":
				switch t := typeName(ra.val.val); {
				case t == "SS" || t == "NS" || t == "BS":
				case t == "N" && c.Kind == "ADD":
				default:
					msg = "Incorrect operand type for operator or function; operator: " + c.Kind + ", operand type: " + longType[t]
				}
			}
			if msg != "" {
				return nil, msg
			}
			acts = append(acts, ra)
		}
	}
	return acts, ""
}

var longType = map[string]string{"S": "STRING", "N": "NUMBER", "B": "BINARY", "NULL": "NULL", "BOOL": "BOOLEAN", "L": "LIST", "M": "MAP"}

func checkSetValue(r *rop) string {
	switch r.kind {
	case OpPlus, OpMinus:
		op := map[OperandKind]string{OpPlus: "+", OpMinus: "-"}[r.kind]
		for _, a := range r.args {
			if msg := checkSetValue(a); msg != "" {
				return msg
			}
			if a.kind == OpValue && typeName(a.val) != "N" {
				return "Incorrect operand type for operator or function; operator or function: " + op + ", operand type: " + typeName(a.val)
			}
		}
	case OpCall:
		if !updateFuncs[r.fn] {
			return "Invalid function name; function: " + r.fn
		}
		if len(r.args) != arity[r.fn] {
			return fmt.Sprintf("Incorrect number of operands for operator or function; operator or function: %s, number of operands: %d", r.fn, len(r.args))
		}
		for _, a := range r.args {
			if msg := checkSetValue(a); msg != "" {
				return msg
			}
			if r.fn == "list_append" && a.kind == OpValue && typeName(a.val) != "L" {
				return "Incorrect operand type for operator or function; operator or function: list_append, operand type: " + typeName(a.val)
			}
		}
		if r.fn == "if_not_exists" && r.args[0].kind != OpPath {
			return "Operator or function requires a document path; operator or function: if_not_exists"
		}
	}
	return ""
}

// overlap rejects two actions on the same path or one path inside another.
func overlap(a, b Path) string {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i].IsIndex != b[i].IsIndex {
			return "Two document paths conflict with each other; must remove or rewrite one of these paths; path one: " + a.String() + ", path two: " + b.String()
		}
		if a[i] != b[i] {
			return ""
		}
	}
	return "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: " + a.String() + ", path two: " + b.String()
}

// rcond is a resolved condition.
type rcond struct {
	op   string
	sub  []*rcond
	args []*rop
	fn   string
}

var validTypes = []string{"S", "N", "B", "NULL", "SS", "BOOL", "L", "BS", "NS", "M"}

// checkCond resolves c and applies DynamoDB's static checks.
func (e *env) checkCond(c *Cond) (*rcond, string) {
	r := &rcond{op: c.Op, fn: c.Fn}
	for _, s := range c.Sub {
		rs, msg := e.checkCond(s)
		if msg != "" {
			return nil, msg
		}
		r.sub = append(r.sub, rs)
	}
	for _, a := range c.Args {
		ra, msg := e.operand(a)
		if msg != "" {
			return nil, msg
		}
		r.args = append(r.args, ra)
	}
	// Only size() may stand where a value does.
	for _, a := range r.args {
		if a.kind == OpCall && a.fn != "size" {
			if _, known := arity[a.fn]; !known || updateFuncs[a.fn] {
				return nil, "Invalid function name; function: " + a.fn
			}
			return nil, "The function is not allowed to be used this way in an expression; function: " + a.fn
		}
		if msg := checkSize(a); msg != "" {
			return nil, msg
		}
	}
	switch c.Op {
	case "=", "<>", "<", "<=", ">", ">=":
		if x, y := r.args[0], r.args[1]; x.kind == OpPath && y.kind == OpPath && slices.Equal(x.path, y.path) {
			return nil, "The first operand must be distinct from the remaining operands for this operator or function; operator: " + c.Op + ", first operand: " + x.path.String()
		}
	case "BETWEEN":
		lo, hi := r.args[1], r.args[2]
		if lo.kind == OpValue && hi.kind == OpValue {
			if typeName(lo.val) != typeName(hi.val) {
				return nil, "The BETWEEN operator requires same data type for lower and upper bounds"
			}
			if o, ok := order(lo.val, hi.val); ok && o > 0 {
				return nil, "The BETWEEN operator requires upper bound to be greater than or equal to lower bound"
			}
		}
	case "IN":
		if len(r.args) > 101 {
			return nil, "Too many operands for the IN operator; maximum: 100"
		}
	case "CALL":
		n, known := arity[c.Fn]
		switch {
		case c.Fn == "size":
			return nil, "The function is not allowed to be used this way in an expression; function: size"
		case !known || updateFuncs[c.Fn]:
			return nil, "Invalid function name; function: " + c.Fn
		case len(r.args) != n:
			return nil, fmt.Sprintf("Incorrect number of operands for operator or function; operator or function: %s, number of operands: %d", c.Fn, len(r.args))
		}
		switch c.Fn {
		case "attribute_exists", "attribute_not_exists":
			if r.args[0].kind != OpPath {
				return nil, "Operator or function requires a document path; operator or function: " + c.Fn
			}
		case "attribute_type":
			t, ok := r.args[1].val.(*types.AttributeValueMemberS)
			if r.args[1].kind != OpValue || !ok {
				return nil, "Incorrect operand type for operator or function; operator or function: attribute_type"
			}
			if !slices.Contains(validTypes, t.Value) {
				return nil, "Invalid attribute type name found; type: " + t.Value + ", valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}"
			}
		case "begins_with":
			for _, a := range r.args {
				if t := typeName(a.val); a.kind == OpValue && t != "S" && t != "B" {
					return nil, "Incorrect operand type for operator or function; operator or function: begins_with, operand type: " + t
				}
			}
		}
	}
	return r, ""
}

func checkSize(a *rop) string {
	if a.kind != OpCall || a.fn != "size" {
		return ""
	}
	if len(a.args) != 1 {
		return fmt.Sprintf("Incorrect number of operands for operator or function; operator or function: size, number of operands: %d", len(a.args))
	}
	x := a.args[0]
	if x.kind == OpCall {
		return "The function is not allowed to be used this way in an expression; function: " + x.fn
	}
	if t := typeName(x.val); x.kind == OpValue && (t == "N" || t == "BOOL" || t == "NULL") {
		return "Incorrect operand type for operator or function; operator or function: size, operand type: " + t
	}
	return ""
}

// Evaluation.

func getPath(item map[string]types.AttributeValue, p Path) types.AttributeValue {
	var cur types.AttributeValue = &types.AttributeValueMemberM{Value: item}
	for _, el := range p {
		switch v := cur.(type) {
		case *types.AttributeValueMemberM:
			if el.IsIndex {
				return nil
			}
			cur = v.Value[el.Name]
		case *types.AttributeValueMemberL:
			if !el.IsIndex || el.Index >= len(v.Value) {
				return nil
			}
			cur = v.Value[el.Index]
		default:
			return nil
		}
		if cur == nil {
			return nil
		}
	}
	return cur
}

// condValue is an operand's value in a condition; nil when absent.
func condValue(item map[string]types.AttributeValue, r *rop) types.AttributeValue {
	switch r.kind {
	case OpPath:
		return getPath(item, r.path)
	case OpValue:
		return r.val
	}
	// size(x)
	var n int
	switch v := condValue(item, r.args[0]).(type) {
	case *types.AttributeValueMemberS:
		n = len(v.Value)
	case *types.AttributeValueMemberB:
		n = len(v.Value)
	case *types.AttributeValueMemberSS:
		n = len(v.Value)
	case *types.AttributeValueMemberNS:
		n = len(v.Value)
	case *types.AttributeValueMemberBS:
		n = len(v.Value)
	case *types.AttributeValueMemberL:
		n = len(v.Value)
	case *types.AttributeValueMemberM:
		n = len(v.Value)
	default:
		return nil
	}
	return &types.AttributeValueMemberN{Value: fmt.Sprint(n)}
}

// eval reports whether item satisfies c. A comparison with an absent
// attribute is false, except <>, which is true (DynamoDB's semantics).
func eval(item map[string]types.AttributeValue, c *rcond) bool {
	switch c.op {
	case "AND":
		return eval(item, c.sub[0]) && eval(item, c.sub[1])
	case "OR":
		return eval(item, c.sub[0]) || eval(item, c.sub[1])
	case "NOT":
		return !eval(item, c.sub[0])
	}
	vals := make([]types.AttributeValue, len(c.args))
	for i, a := range c.args {
		vals[i] = condValue(item, a)
	}
	x := vals[0]
	switch c.op {
	case "=":
		return x != nil && vals[1] != nil && equal(x, vals[1])
	case "<>":
		return x == nil || vals[1] == nil || !equal(x, vals[1])
	case "<", "<=", ">", ">=":
		if x == nil || vals[1] == nil {
			return false
		}
		o, ok := order(x, vals[1])
		return ok && map[string]bool{"<": o < 0, "<=": o <= 0, ">": o > 0, ">=": o >= 0}[c.op]
	case "BETWEEN":
		if x == nil || vals[1] == nil || vals[2] == nil {
			return false
		}
		lo, ok1 := order(x, vals[1])
		hi, ok2 := order(x, vals[2])
		return ok1 && ok2 && lo >= 0 && hi <= 0
	case "IN":
		if x == nil {
			return false
		}
		for _, v := range vals[1:] {
			if v != nil && equal(x, v) {
				return true
			}
		}
		return false
	}
	switch c.fn {
	case "attribute_exists":
		return x != nil
	case "attribute_not_exists":
		return x == nil
	case "attribute_type":
		return x != nil && typeName(x) == vals[1].(*types.AttributeValueMemberS).Value
	case "begins_with":
		switch x := x.(type) {
		case *types.AttributeValueMemberS:
			p, ok := vals[1].(*types.AttributeValueMemberS)
			return ok && strings.HasPrefix(x.Value, p.Value)
		case *types.AttributeValueMemberB:
			p, ok := vals[1].(*types.AttributeValueMemberB)
			return ok && bytes.HasPrefix(x.Value, p.Value)
		}
		return false
	case "contains":
		return contains(x, vals[1])
	}
	return false
}

func contains(x, v types.AttributeValue) bool {
	if x == nil || v == nil {
		return false
	}
	switch x := x.(type) {
	case *types.AttributeValueMemberS:
		s, ok := v.(*types.AttributeValueMemberS)
		return ok && strings.Contains(x.Value, s.Value)
	case *types.AttributeValueMemberB:
		b, ok := v.(*types.AttributeValueMemberB)
		return ok && bytes.Contains(x.Value, b.Value)
	case *types.AttributeValueMemberSS:
		s, ok := v.(*types.AttributeValueMemberS)
		return ok && slices.Contains(x.Value, s.Value)
	case *types.AttributeValueMemberNS:
		n, ok := v.(*types.AttributeValueMemberN)
		return ok && slices.ContainsFunc(x.Value, func(m string) bool { return cmpNum(m, n.Value) == 0 })
	case *types.AttributeValueMemberBS:
		b, ok := v.(*types.AttributeValueMemberB)
		return ok && slices.ContainsFunc(x.Value, func(m []byte) bool { return bytes.Equal(m, b.Value) })
	case *types.AttributeValueMemberL:
		return slices.ContainsFunc(x.Value, func(e types.AttributeValue) bool { return equal(e, v) })
	}
	return false
}

const errType = "An operand in the update expression has an incorrect data type"

// setValue computes a SET action's value against the item before the update.
func setValue(item map[string]types.AttributeValue, r *rop) (types.AttributeValue, string) {
	switch r.kind {
	case OpValue:
		return copyValue(r.val), ""
	case OpPath:
		v := getPath(item, r.path)
		if v == nil {
			return nil, "The provided expression refers to an attribute that does not exist in the item"
		}
		return copyValue(v), ""
	case OpPlus, OpMinus:
		a, msg := setValue(item, r.args[0])
		if msg != "" {
			return nil, msg
		}
		b, msg := setValue(item, r.args[1])
		if msg != "" {
			return nil, msg
		}
		x, ok1 := a.(*types.AttributeValueMemberN)
		y, ok2 := b.(*types.AttributeValueMemberN)
		if !ok1 || !ok2 {
			return nil, errType
		}
		s, msg := addNum(x.Value, y.Value, r.kind == OpMinus)
		if msg != "" {
			return nil, msg
		}
		return &types.AttributeValueMemberN{Value: s}, ""
	}
	switch r.fn {
	case "if_not_exists":
		if v := getPath(item, r.args[0].path); v != nil {
			return copyValue(v), ""
		}
		return setValue(item, r.args[1])
	default: // list_append
		a, msg := setValue(item, r.args[0])
		if msg != "" {
			return nil, msg
		}
		b, msg := setValue(item, r.args[1])
		if msg != "" {
			return nil, msg
		}
		x, ok1 := a.(*types.AttributeValueMemberL)
		y, ok2 := b.(*types.AttributeValueMemberL)
		if !ok1 || !ok2 {
			return nil, errType
		}
		return &types.AttributeValueMemberL{Value: append(slices.Clone(x.Value), y.Value...)}, ""
	}
}

// apply runs the actions on item (a private copy) in place.
func apply(item map[string]types.AttributeValue, acts []ract) string {
	// Every SET value is computed from the item as it was (SET a = b, b = a swaps).
	vals := make([]types.AttributeValue, len(acts))
	for i, a := range acts {
		if a.kind == "SET" {
			v, msg := setValue(item, a.val)
			if msg != "" {
				return msg
			}
			vals[i] = v
		}
	}
	root := &types.AttributeValueMemberM{Value: item}
	for i, a := range acts {
		var parent types.AttributeValue = root
		if len(a.path) > 1 {
			parent = getPath(item, a.path[:len(a.path)-1])
		}
		last := a.path[len(a.path)-1]
		m, isMap := parent.(*types.AttributeValueMemberM)
		l, isList := parent.(*types.AttributeValueMemberL)
		if isMap == last.IsIndex || isList != last.IsIndex {
			return "The document path provided in the update expression is invalid for update"
		}
		var existing types.AttributeValue
		if isMap {
			existing = m.Value[last.Name]
		} else if last.Index < len(l.Value) {
			existing = l.Value[last.Index]
		}
		put := func(v types.AttributeValue) {
			switch {
			case v == nil && isMap:
				delete(m.Value, last.Name)
			case v == nil:
				if last.Index < len(l.Value) {
					l.Value = slices.Delete(l.Value, last.Index, last.Index+1)
				}
			case isMap:
				m.Value[last.Name] = v
			case last.Index < len(l.Value):
				l.Value[last.Index] = v
			default: // past the end: appended
				l.Value = append(l.Value, v)
			}
		}
		switch a.kind {
		case "SET":
			put(vals[i])
		case "REMOVE":
			put(nil)
		case "ADD", "DELETE":
			v := a.val.val
			if existing != nil && typeName(existing) != typeName(v) {
				return errType
			}
			nv, msg := addOrDelete(existing, v, a.kind == "DELETE")
			if msg != "" {
				return msg
			}
			put(nv)
		}
	}
	return ""
}

// addOrDelete is ADD (number sum or set union) or DELETE (set difference;
// an emptied set is removed).
func addOrDelete(existing, v types.AttributeValue, del bool) (types.AttributeValue, string) {
	switch v := v.(type) {
	case *types.AttributeValueMemberN:
		old := "0"
		if existing != nil {
			old = existing.(*types.AttributeValueMemberN).Value
		}
		s, msg := addNum(old, v.Value, false)
		return &types.AttributeValueMemberN{Value: s}, msg
	case *types.AttributeValueMemberSS:
		var old []string
		if existing != nil {
			old = existing.(*types.AttributeValueMemberSS).Value
		}
		out := setOp(old, v.Value, del, func(a, b string) bool { return a == b })
		if len(out) == 0 {
			return nil, ""
		}
		return &types.AttributeValueMemberSS{Value: out}, ""
	case *types.AttributeValueMemberNS:
		var old []string
		if existing != nil {
			old = existing.(*types.AttributeValueMemberNS).Value
		}
		out := setOp(old, v.Value, del, func(a, b string) bool { return cmpNum(a, b) == 0 })
		if len(out) == 0 {
			return nil, ""
		}
		return &types.AttributeValueMemberNS{Value: out}, ""
	case *types.AttributeValueMemberBS:
		var old [][]byte
		if existing != nil {
			old = existing.(*types.AttributeValueMemberBS).Value
		}
		out := setOp(old, v.Value, del, bytes.Equal)
		if len(out) == 0 {
			return nil, ""
		}
		return &types.AttributeValueMemberBS{Value: out}, ""
	}
	return nil, errType
}

func setOp[T any](old, v []T, del bool, eq func(a, b T) bool) []T {
	has := func(s []T, x T) bool { return slices.ContainsFunc(s, func(y T) bool { return eq(x, y) }) }
	var out []T
	if del {
		for _, x := range old {
			if !has(v, x) {
				out = append(out, x)
			}
		}
		return out
	}
	out = slices.Clone(old)
	for _, x := range v {
		if !has(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// project copies the attributes at paths (ReturnValues UPDATED_*, a
// ProjectionExpression); nil when none exists.
func project(item map[string]types.AttributeValue, paths []Path) map[string]types.AttributeValue {
	out := map[string]types.AttributeValue{}
	for _, p := range paths {
		v := getPath(item, p)
		if v == nil {
			continue
		}
		var cur types.AttributeValue = &types.AttributeValueMemberM{Value: out}
		for i, el := range p {
			lastStep := i == len(p)-1
			var next types.AttributeValue
			switch c := cur.(type) {
			case *types.AttributeValueMemberM:
				next = c.Value[el.Name]
				if lastStep {
					c.Value[el.Name] = copyValue(v)
				} else if next == nil {
					next = emptyFor(p[i+1])
					c.Value[el.Name] = next
				}
			case *types.AttributeValueMemberL:
				// Projected list elements keep their order, not their index.
				if lastStep {
					c.Value = append(c.Value, copyValue(v))
				} else {
					next = emptyFor(p[i+1])
					c.Value = append(c.Value, next)
				}
			}
			cur = next
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func emptyFor(el PathElem) types.AttributeValue {
	if el.IsIndex {
		return &types.AttributeValueMemberL{}
	}
	return &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
