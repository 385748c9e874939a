package memdb

import (
	"fmt"
	"strconv"
	"strings"
)

// The expression grammar follows the DynamoDB developer guide
// (Expressions.UpdateExpressions, Expressions.OperatorsAndFunctions).
// Parsing is purely syntactic: placeholders stay unresolved, so that a
// parsed expression prints back (String) to text that parses the same.
// Names, values, functions and types are checked by check*.

// PathElem is one step of a document path: an attribute name (a bare
// name or a #placeholder) or a list index.
type PathElem struct {
	Name    string
	Index   int
	IsIndex bool
}

// Path is a document path such as a.b[0] or #n.
type Path []PathElem

func (p Path) String() string {
	var b strings.Builder
	for i, e := range p {
		switch {
		case e.IsIndex:
			fmt.Fprintf(&b, "[%d]", e.Index)
		case i > 0:
			b.WriteString("." + e.Name)
		default:
			b.WriteString(e.Name)
		}
	}
	return b.String()
}

// OperandKind tells what an Operand is.
type OperandKind int

const (
	OpPath  OperandKind = iota // Path
	OpValue                    // Value, a :placeholder
	OpCall                     // Fn(Args...)
	OpPlus                     // Args[0] + Args[1]
	OpMinus                    // Args[0] - Args[1]
)

// Operand is a value in an expression.
type Operand struct {
	Kind  OperandKind
	Path  Path
	Value string
	Fn    string
	Args  []*Operand
}

func (o *Operand) String() string {
	switch o.Kind {
	case OpPath:
		return o.Path.String()
	case OpValue:
		return o.Value
	case OpPlus:
		return o.Args[0].String() + " + " + o.Args[1].String()
	case OpMinus:
		return o.Args[0].String() + " - " + o.Args[1].String()
	}
	args := make([]string, len(o.Args))
	for i, a := range o.Args {
		args[i] = a.String()
	}
	return o.Fn + "(" + strings.Join(args, ", ") + ")"
}

// Action is one SET, REMOVE, ADD or DELETE action.
type Action struct {
	Path  Path
	Value *Operand // nil for REMOVE
}

// Clause is one section of an update expression.
type Clause struct {
	Kind    string // SET, REMOVE, ADD, DELETE
	Actions []Action
}

// Update is a parsed UpdateExpression.
type Update struct{ Clauses []Clause }

func (u *Update) String() string {
	parts := make([]string, len(u.Clauses))
	for i, c := range u.Clauses {
		acts := make([]string, len(c.Actions))
		for j, a := range c.Actions {
			switch c.Kind {
			case "SET":
				acts[j] = a.Path.String() + " = " + a.Value.String()
			case "REMOVE":
				acts[j] = a.Path.String()
			default:
				acts[j] = a.Path.String() + " " + a.Value.String()
			}
		}
		parts[i] = c.Kind + " " + strings.Join(acts, ", ")
	}
	return strings.Join(parts, " ")
}

// Cond is a parsed ConditionExpression (or FilterExpression).
type Cond struct {
	Op   string // AND OR NOT = <> < <= > >= BETWEEN IN CALL
	Sub  []*Cond
	Args []*Operand
	Fn   string // CALL: the function
}

func (c *Cond) String() string {
	wrap := func(s *Cond) string {
		if s.Op == "AND" || s.Op == "OR" || s.Op == "NOT" {
			return "(" + s.String() + ")"
		}
		return s.String()
	}
	switch c.Op {
	case "AND", "OR":
		return wrap(c.Sub[0]) + " " + c.Op + " " + wrap(c.Sub[1])
	case "NOT":
		return "NOT " + wrap(c.Sub[0])
	case "BETWEEN":
		return c.Args[0].String() + " BETWEEN " + c.Args[1].String() + " AND " + c.Args[2].String()
	case "IN":
		in := make([]string, len(c.Args)-1)
		for i, a := range c.Args[1:] {
			in[i] = a.String()
		}
		return c.Args[0].String() + " IN (" + strings.Join(in, ", ") + ")"
	case "CALL":
		return (&Operand{Kind: OpCall, Fn: c.Fn, Args: c.Args}).String()
	}
	return c.Args[0].String() + " " + c.Op + " " + c.Args[1].String()
}

// Lexing.

type tokKind int

const (
	tEOF    tokKind = iota
	tIdent          // a bare name or keyword
	tName           // #placeholder
	tValue          // :placeholder
	tNumber         // a list index
	tPunct
)

type token struct {
	kind tokKind
	text string
}

type syntaxError struct{ msg string }

func (e *syntaxError) Error() string { return e.msg }

func lex(s string) ([]token, error) {
	var toks []token
	isPart := func(c byte) bool {
		return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			i++
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i + 1
			for j < len(s) && isPart(s[j]) {
				j++
			}
			toks = append(toks, token{tIdent, s[i:j]})
			i = j
		case c == '#' || c == ':':
			j := i + 1
			for j < len(s) && isPart(s[j]) {
				j++
			}
			if j == i+1 {
				return nil, &syntaxError{fmt.Sprintf("Syntax error; token: %q, near: %q", s[i:j], near(s, i))}
			}
			k := tName
			if c == ':' {
				k = tValue
			}
			toks = append(toks, token{k, s[i:j]})
			i = j
		case c >= '0' && c <= '9':
			j := i + 1
			for j < len(s) && s[j] >= '0' && s[j] <= '9' {
				j++
			}
			toks = append(toks, token{tNumber, s[i:j]})
			i = j
		case strings.HasPrefix(s[i:], "<>") || strings.HasPrefix(s[i:], "<=") || strings.HasPrefix(s[i:], ">="):
			toks = append(toks, token{tPunct, s[i : i+2]})
			i += 2
		case strings.IndexByte("()[].,=<>+-", c) >= 0:
			toks = append(toks, token{tPunct, s[i : i+1]})
			i++
		default:
			return nil, &syntaxError{fmt.Sprintf("Syntax error; token: %q, near: %q", s[i:i+1], near(s, i))}
		}
	}
	return append(toks, token{kind: tEOF}), nil
}

func near(s string, i int) string {
	lo, hi := max(i-8, 0), min(i+8, len(s))
	return s[lo:hi]
}

type parser struct {
	toks     []token
	i        int
	keywords map[string]bool // words that end a path (SET, AND, ...)
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) peekAt(n int) token {
	if p.i+n < len(p.toks) {
		return p.toks[p.i+n]
	}
	return token{kind: tEOF}
}
func (p *parser) punct(s string) bool { t := p.peek(); return t.kind == tPunct && t.text == s }
func (p *parser) keyword(s string) bool {
	t := p.peek()
	return t.kind == tIdent && strings.EqualFold(t.text, s)
}

func (p *parser) fail() error {
	t := p.peek()
	if t.kind == tEOF {
		return &syntaxError{"Syntax error; token: <EOF>, near: end of expression"}
	}
	return &syntaxError{fmt.Sprintf("Syntax error; token: %q", t.text)}
}

func (p *parser) expect(s string) error {
	if !p.punct(s) {
		return p.fail()
	}
	p.i++
	return nil
}

func (p *parser) name() (string, bool) {
	t := p.peek()
	if t.kind == tName || t.kind == tIdent && !p.keywords[strings.ToUpper(t.text)] {
		p.i++
		return t.text, true
	}
	return "", false
}

func (p *parser) path() (Path, error) {
	n, ok := p.name()
	if !ok {
		return nil, p.fail()
	}
	path := Path{{Name: n}}
	for {
		switch {
		case p.punct("["):
			p.i++
			t := p.peek()
			if t.kind != tNumber {
				return nil, p.fail()
			}
			ix, err := strconv.Atoi(t.text)
			if err != nil || ix > 1<<24 {
				return nil, &syntaxError{"Syntax error; list index out of range: " + t.text}
			}
			p.i++
			if err := p.expect("]"); err != nil {
				return nil, err
			}
			path = append(path, PathElem{Index: ix, IsIndex: true})
		case p.punct("."):
			p.i++
			n, ok := p.name()
			if !ok {
				return nil, p.fail()
			}
			path = append(path, PathElem{Name: n})
		default:
			return path, nil
		}
	}
}

// operand is Function | :value | path, optionally in one pair of
// parentheses.
func (p *parser) operand() (*Operand, error) {
	if p.punct("(") {
		p.i++
		if p.punct("(") {
			return nil, &syntaxError{"The expression has redundant parentheses;"}
		}
		o, err := p.operand()
		if err != nil {
			return nil, err
		}
		return o, p.expect(")")
	}
	t := p.peek()
	switch {
	case t.kind == tValue:
		p.i++
		return &Operand{Kind: OpValue, Value: t.text}, nil
	case t.kind == tIdent && p.peekAt(1).kind == tPunct && p.peekAt(1).text == "(" && !p.keywords[strings.ToUpper(t.text)]:
		p.i += 2
		var args []*Operand
		for {
			a, err := p.operand()
			if err != nil {
				return nil, err
			}
			args = append(args, a)
			if !p.punct(",") {
				break
			}
			p.i++
		}
		return &Operand{Kind: OpCall, Fn: t.text, Args: args}, p.expect(")")
	}
	path, err := p.path()
	if err != nil {
		return nil, err
	}
	return &Operand{Kind: OpPath, Path: path}, nil
}

var updateKeywords = map[string]bool{"SET": true, "REMOVE": true, "ADD": true, "DELETE": true}

// ParseUpdate parses an UpdateExpression.
func ParseUpdate(s string) (*Update, error) {
	if s == "" {
		return nil, &syntaxError{"The expression can not be empty;"}
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, keywords: updateKeywords}
	u := &Update{}
	seen := map[string]bool{}
	for p.peek().kind != tEOF {
		kw := strings.ToUpper(p.peek().text)
		if p.peek().kind != tIdent || !updateKeywords[kw] {
			return nil, p.fail()
		}
		if seen[kw] {
			return nil, &syntaxError{fmt.Sprintf("The %q section can only be used once in an update expression;", kw)}
		}
		seen[kw] = true
		p.i++
		c := Clause{Kind: kw}
		for {
			a, err := p.action(kw)
			if err != nil {
				return nil, err
			}
			c.Actions = append(c.Actions, a)
			if !p.punct(",") {
				break
			}
			p.i++
		}
		u.Clauses = append(u.Clauses, c)
	}
	if len(u.Clauses) == 0 {
		return nil, p.fail()
	}
	return u, nil
}

func (p *parser) action(kw string) (Action, error) {
	path, err := p.path()
	if err != nil {
		return Action{}, err
	}
	switch kw {
	case "REMOVE":
		return Action{Path: path}, nil
	case "SET":
		if err := p.expect("="); err != nil {
			return Action{}, err
		}
		v, err := p.setValue()
		return Action{Path: path, Value: v}, err
	}
	t := p.peek()
	if t.kind != tValue {
		return Action{}, p.fail()
	}
	p.i++
	return Action{Path: path, Value: &Operand{Kind: OpValue, Value: t.text}}, nil
}

// setValue is operand [+|- operand], optionally in parentheses as a
// whole.
func (p *parser) setValue() (*Operand, error) {
	if p.punct("(") {
		save := p.i
		p.i++
		v, err := p.setValueBare()
		if err == nil && p.punct(")") {
			p.i++
			if t := p.peek(); t.kind == tEOF || t.kind == tPunct && t.text == "," || t.kind == tIdent && updateKeywords[strings.ToUpper(t.text)] {
				return v, nil
			}
		}
		p.i = save // "(a) + :b": the parentheses were the first operand's
	}
	return p.setValueBare()
}

func (p *parser) setValueBare() (*Operand, error) {
	a, err := p.operand()
	if err != nil {
		return nil, err
	}
	k := OpPlus
	switch {
	case p.punct("+"):
	case p.punct("-"):
		k = OpMinus
	default:
		return a, nil
	}
	p.i++
	b, err := p.operand()
	if err != nil {
		return nil, err
	}
	return &Operand{Kind: k, Args: []*Operand{a, b}}, nil
}

var condKeywords = map[string]bool{"AND": true, "OR": true, "NOT": true, "BETWEEN": true, "IN": true}

// ParseCond parses a ConditionExpression.
func ParseCond(s string) (*Cond, error) {
	if s == "" {
		return nil, &syntaxError{"The expression can not be empty;"}
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, keywords: condKeywords}
	c, _, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.peek().kind != tEOF {
		return nil, p.fail()
	}
	return c, nil
}

// or, and and not return whether the whole condition was one
// parenthesised group, to reject ((x)) as DynamoDB does. AND binds tighter
// than OR; both group to the right.
func (p *parser) or() (*Cond, bool, error) {
	l, grouped, err := p.and()
	if err != nil || !p.keyword("OR") {
		return l, grouped, err
	}
	p.i++
	r, _, err := p.or()
	if err != nil {
		return nil, false, err
	}
	return &Cond{Op: "OR", Sub: []*Cond{l, r}}, false, nil
}

func (p *parser) and() (*Cond, bool, error) {
	l, grouped, err := p.not()
	if err != nil || !p.keyword("AND") {
		return l, grouped, err
	}
	p.i++
	r, _, err := p.and()
	if err != nil {
		return nil, false, err
	}
	return &Cond{Op: "AND", Sub: []*Cond{l, r}}, false, nil
}

func (p *parser) not() (*Cond, bool, error) {
	if !p.keyword("NOT") {
		return p.primary()
	}
	p.i++
	c, _, err := p.primary()
	if err != nil {
		return nil, false, err
	}
	return &Cond{Op: "NOT", Sub: []*Cond{c}}, false, nil
}

func (p *parser) primary() (*Cond, bool, error) {
	if p.punct("(") {
		save := p.i
		p.i++
		c, grouped, err := p.or()
		if err == nil && p.punct(")") {
			p.i++
			if grouped {
				return nil, false, &syntaxError{"The expression has redundant parentheses;"}
			}
			return c, true, nil
		}
		p.i = save // "(a) = :v": the parentheses were the operand's
	}
	x, err := p.operand()
	if err != nil {
		return nil, false, err
	}
	t := p.peek()
	switch {
	case t.kind == tPunct && strings.Contains(" = <> < <= > >= ", " "+t.text+" "):
		p.i++
		y, err := p.operand()
		if err != nil {
			return nil, false, err
		}
		return &Cond{Op: t.text, Args: []*Operand{x, y}}, false, nil
	case p.keyword("BETWEEN"):
		p.i++
		lo, err := p.operand()
		if err != nil {
			return nil, false, err
		}
		if !p.keyword("AND") {
			return nil, false, p.fail()
		}
		p.i++
		hi, err := p.operand()
		if err != nil {
			return nil, false, err
		}
		return &Cond{Op: "BETWEEN", Args: []*Operand{x, lo, hi}}, false, nil
	case p.keyword("IN"):
		p.i++
		if err := p.expect("("); err != nil {
			return nil, false, err
		}
		args := []*Operand{x}
		for {
			a, err := p.operand()
			if err != nil {
				return nil, false, err
			}
			args = append(args, a)
			if !p.punct(",") {
				break
			}
			p.i++
		}
		return &Cond{Op: "IN", Args: args}, false, p.expect(")")
	case x.Kind == OpCall:
		return &Cond{Op: "CALL", Fn: x.Fn, Args: x.Args}, false, nil
	}
	return nil, false, p.fail()
}

// ParseProjection parses a ProjectionExpression: paths separated by commas.
func ParseProjection(s string) ([]Path, error) {
	if s == "" {
		return nil, &syntaxError{"The expression can not be empty;"}
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	var paths []Path
	for {
		path, err := p.path()
		if err != nil {
			return nil, err
		}
		paths = append(paths, path)
		if !p.punct(",") {
			break
		}
		p.i++
	}
	if p.peek().kind != tEOF {
		return nil, p.fail()
	}
	return paths, nil
}
