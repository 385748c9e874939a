package memdb

import (
	"bytes"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// decimal is c × 10^e: DynamoDB numbers are decimals of up to 38
// significant digits, so float64 would lose both precision and equality.
type decimal struct {
	c *big.Int
	e int
}

// parseNumber reads an N value and returns it in DynamoDB's canonical
// form (no exponent, no superfluous zeros), or a ValidationException text.
func parseNumber(s string) (decimal, string) {
	bad := "The parameter cannot be converted to a numeric value: " + s
	if s == "" {
		return decimal{}, "The parameter cannot be converted to a numeric value"
	}
	mant, exp := s, 0
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant = s[:i]
		var err error
		if exp, err = atoiSigned(s[i+1:]); err != nil {
			return decimal{}, bad
		}
	}
	neg := false
	if mant != "" && (mant[0] == '-' || mant[0] == '+') {
		neg = mant[0] == '-'
		mant = mant[1:]
	}
	whole, frac, _ := strings.Cut(mant, ".")
	digits := whole + frac
	if digits == "" || strings.Trim(digits, "0123456789") != "" || strings.Count(mant, ".") > 1 {
		return decimal{}, bad
	}
	c, _ := new(big.Int).SetString(digits, 10)
	if neg {
		c.Neg(c)
	}
	d := decimal{c: c, e: exp - len(frac)}.norm()
	if d.c.Sign() != 0 {
		sig := len(d.c.Text(10))
		if d.c.Sign() < 0 {
			sig--
		}
		switch top := sig - 1 + d.e; {
		case top > 125:
			return decimal{}, "Number overflow. Attempting to store a number with magnitude larger than supported range"
		case top < -130:
			return decimal{}, "Number underflow. Attempting to store a number with magnitude smaller than supported range"
		case sig > 38:
			return decimal{}, "Attempting to store more than 38 significant digits in a Number"
		}
	}
	return d, ""
}

func atoiSigned(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || s == "" || s[len(s)-1] < '0' || s[len(s)-1] > '9' {
		return 0, fmt.Errorf("bad exponent %q", s)
	}
	if n > 1000 || n < -1000 { // far past the ±130 DynamoDB allows
		return 0, fmt.Errorf("exponent out of range %q", s)
	}
	return n, nil
}

// norm strips trailing zeros of the coefficient.
func (d decimal) norm() decimal {
	if d.c.Sign() == 0 {
		return decimal{c: new(big.Int), e: 0}
	}
	ten, q, r := big.NewInt(10), new(big.Int), new(big.Int)
	c := new(big.Int).Set(d.c)
	for {
		q.QuoRem(c, ten, r)
		if r.Sign() != 0 {
			return decimal{c: c, e: d.e}
		}
		c.Set(q)
		d.e++
	}
}

func (d decimal) String() string {
	s := d.c.Text(10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	switch {
	case d.e >= 0:
		s += strings.Repeat("0", d.e)
	case -d.e >= len(s):
		s = "0." + strings.Repeat("0", -d.e-len(s)) + s
	default:
		s = s[:len(s)+d.e] + "." + s[len(s)+d.e:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// align returns both coefficients at the smaller exponent.
func align(a, b decimal) (*big.Int, *big.Int, int) {
	e := min(a.e, b.e)
	scale := func(d decimal) *big.Int {
		return new(big.Int).Mul(d.c, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(d.e-e)), nil))
	}
	return scale(a), scale(b), e
}

func cmpNum(a, b string) int {
	x, _ := parseNumber(a)
	y, _ := parseNumber(b)
	if x.c == nil || y.c == nil { // stored numbers are valid; keep total order anyway
		return strings.Compare(a, b)
	}
	p, q, _ := align(x, y)
	return p.Cmp(q)
}

// addNum adds (or subtracts) two valid N strings.
func addNum(a, b string, sub bool) (string, string) {
	x, msg := parseNumber(a)
	if msg != "" {
		return "", msg
	}
	y, msg := parseNumber(b)
	if msg != "" {
		return "", msg
	}
	p, q, e := align(x, y)
	if sub {
		q.Neg(q)
	}
	r := decimal{c: p.Add(p, q), e: e}.norm()
	if _, msg := parseNumber(r.String()); msg != "" {
		return "", msg
	}
	return r.String(), ""
}

// typeName is the DynamoDB type descriptor of v.
func typeName(v types.AttributeValue) string {
	switch v.(type) {
	case *types.AttributeValueMemberS:
		return "S"
	case *types.AttributeValueMemberN:
		return "N"
	case *types.AttributeValueMemberB:
		return "B"
	case *types.AttributeValueMemberBOOL:
		return "BOOL"
	case *types.AttributeValueMemberNULL:
		return "NULL"
	case *types.AttributeValueMemberSS:
		return "SS"
	case *types.AttributeValueMemberNS:
		return "NS"
	case *types.AttributeValueMemberBS:
		return "BS"
	case *types.AttributeValueMemberL:
		return "L"
	case *types.AttributeValueMemberM:
		return "M"
	}
	return ""
}

// clean validates v and returns a deep copy with numbers in canonical
// form; msg is a ValidationException text.
func clean(v types.AttributeValue) (types.AttributeValue, string) {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return &types.AttributeValueMemberS{Value: v.Value}, ""
	case *types.AttributeValueMemberN:
		d, msg := parseNumber(v.Value)
		if msg != "" {
			return nil, msg
		}
		return &types.AttributeValueMemberN{Value: d.String()}, ""
	case *types.AttributeValueMemberB:
		return &types.AttributeValueMemberB{Value: bytes.Clone(v.Value)}, ""
	case *types.AttributeValueMemberBOOL:
		return &types.AttributeValueMemberBOOL{Value: v.Value}, ""
	case *types.AttributeValueMemberNULL:
		if !v.Value {
			return nil, "One or more parameter values were invalid: Null attribute value types must have the value of true"
		}
		return &types.AttributeValueMemberNULL{Value: true}, ""
	case *types.AttributeValueMemberSS:
		if len(v.Value) == 0 {
			return nil, "One or more parameter values were invalid: An string set  may not be empty"
		}
		if hasDup(v.Value) {
			return nil, "One or more parameter values were invalid: Input collection contains duplicates."
		}
		return &types.AttributeValueMemberSS{Value: slices.Clone(v.Value)}, ""
	case *types.AttributeValueMemberNS:
		if len(v.Value) == 0 {
			return nil, "One or more parameter values were invalid: An number set  may not be empty"
		}
		out := make([]string, len(v.Value))
		for i, s := range v.Value {
			d, msg := parseNumber(s)
			if msg != "" {
				return nil, msg
			}
			out[i] = d.String()
		}
		if hasDup(out) {
			return nil, "Input collection contains duplicates"
		}
		return &types.AttributeValueMemberNS{Value: out}, ""
	case *types.AttributeValueMemberBS:
		if len(v.Value) == 0 {
			return nil, "One or more parameter values were invalid: Binary sets should not be empty"
		}
		out := make([][]byte, len(v.Value))
		seen := map[string]bool{}
		for i, b := range v.Value {
			if seen[string(b)] {
				return nil, "One or more parameter values were invalid: Input collection of type BS contains duplicates."
			}
			seen[string(b)] = true
			out[i] = bytes.Clone(b)
		}
		return &types.AttributeValueMemberBS{Value: out}, ""
	case *types.AttributeValueMemberL:
		out := make([]types.AttributeValue, len(v.Value))
		for i, e := range v.Value {
			c, msg := clean(e)
			if msg != "" {
				return nil, msg
			}
			out[i] = c
		}
		return &types.AttributeValueMemberL{Value: out}, ""
	case *types.AttributeValueMemberM:
		out, msg := cleanItem(v.Value)
		if msg != "" {
			return nil, msg
		}
		return &types.AttributeValueMemberM{Value: out}, ""
	}
	return nil, "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
}

func cleanItem(m map[string]types.AttributeValue) (map[string]types.AttributeValue, string) {
	out := make(map[string]types.AttributeValue, len(m))
	for k, v := range m {
		c, msg := clean(v)
		if msg != "" {
			return nil, msg
		}
		out[k] = c
	}
	return out, ""
}

func hasDup(ss []string) bool {
	seen := make(map[string]bool, len(ss))
	for _, s := range ss {
		if seen[s] {
			return true
		}
		seen[s] = true
	}
	return false
}

// copyValue deep-copies a value already known to be valid.
func copyValue(v types.AttributeValue) types.AttributeValue {
	c, _ := clean(v)
	return c
}

func copyItem(m map[string]types.AttributeValue) map[string]types.AttributeValue {
	if m == nil {
		return nil
	}
	out := make(map[string]types.AttributeValue, len(m))
	for k, v := range m {
		out[k] = copyValue(v)
	}
	return out
}

// equal is DynamoDB's = : same type and value; sets compare as sets.
func equal(a, b types.AttributeValue) bool {
	switch a := a.(type) {
	case *types.AttributeValueMemberS:
		b, ok := b.(*types.AttributeValueMemberS)
		return ok && a.Value == b.Value
	case *types.AttributeValueMemberN:
		b, ok := b.(*types.AttributeValueMemberN)
		return ok && cmpNum(a.Value, b.Value) == 0
	case *types.AttributeValueMemberB:
		b, ok := b.(*types.AttributeValueMemberB)
		return ok && bytes.Equal(a.Value, b.Value)
	case *types.AttributeValueMemberBOOL:
		b, ok := b.(*types.AttributeValueMemberBOOL)
		return ok && a.Value == b.Value
	case *types.AttributeValueMemberNULL:
		_, ok := b.(*types.AttributeValueMemberNULL)
		return ok
	case *types.AttributeValueMemberSS:
		b, ok := b.(*types.AttributeValueMemberSS)
		return ok && sameSet(a.Value, b.Value)
	case *types.AttributeValueMemberNS:
		b, ok := b.(*types.AttributeValueMemberNS)
		return ok && sameSet(a.Value, b.Value)
	case *types.AttributeValueMemberBS:
		b, ok := b.(*types.AttributeValueMemberBS)
		if !ok || len(a.Value) != len(b.Value) {
			return false
		}
		for _, x := range a.Value {
			if !slices.ContainsFunc(b.Value, func(y []byte) bool { return bytes.Equal(x, y) }) {
				return false
			}
		}
		return true
	case *types.AttributeValueMemberL:
		b, ok := b.(*types.AttributeValueMemberL)
		return ok && slices.EqualFunc(a.Value, b.Value, equal)
	case *types.AttributeValueMemberM:
		b, ok := b.(*types.AttributeValueMemberM)
		return ok && maps.EqualFunc(a.Value, b.Value, equal)
	}
	return false
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// order compares two scalars of the same orderable type (N, S, B);
// ok is false when they are not comparable, which makes <, <=, >, >= and
// BETWEEN false rather than an error.
func order(a, b types.AttributeValue) (int, bool) {
	switch a := a.(type) {
	case *types.AttributeValueMemberN:
		if b, ok := b.(*types.AttributeValueMemberN); ok {
			return cmpNum(a.Value, b.Value), true
		}
	case *types.AttributeValueMemberS:
		if b, ok := b.(*types.AttributeValueMemberS); ok {
			return strings.Compare(a.Value, b.Value), true
		}
	case *types.AttributeValueMemberB:
		if b, ok := b.(*types.AttributeValueMemberB); ok {
			return bytes.Compare(a.Value, b.Value), true
		}
	}
	return 0, false
}

// MaxItemSize is DynamoDB's item size limit (400 KB).
const MaxItemSize = 400 * 1024

// ItemSize approximates DynamoDB's item size as its documentation describes
// it: attribute names plus values, numbers about one byte per two digits.
// The same size counts against the 400 KB limit and for the capacity
// units a write or read of the item costs (the soak's cost table).
func ItemSize(m map[string]types.AttributeValue) int {
	n := 0
	for k, v := range m {
		n += len(k) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return numSize(v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, s := range v.Value {
			n += numSize(s)
		}
		return n
	case *types.AttributeValueMemberBS:
		n := 0
		for _, b := range v.Value {
			n += len(b)
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		return 3 + len(v.Value) + ItemSize(v.Value)
	}
	return 0
}

func numSize(s string) int {
	d, msg := parseNumber(s)
	if msg != "" || d.c.Sign() == 0 {
		return 1
	}
	digits := len(strings.TrimPrefix(d.c.Text(10), "-"))
	n := 1 + (digits+1)/2
	if d.c.Sign() < 0 {
		n++
	}
	return n
}
