// Package schema holds the JSON Schemas of mmsgate's external formats
// (send-request.schema.json, delivery-event.schema.json) and a validator
// for the subset of JSON Schema 2020-12 they use, so that tests and local
// tools can check a document against them without another dependency.
package schema

import (
	"embed"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

//go:embed *.schema.json
var files embed.FS

// Names of the schemas.
const (
	SendRequest   = "send-request.schema.json"
	DeliveryEvent = "delivery-event.schema.json"
)

// Schema is one parsed schema file.
type Schema struct {
	root map[string]any
}

// Load parses one of the embedded schemas.
func Load(name string) (*Schema, error) {
	b, err := files.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var root map[string]any
	if err := json.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &Schema{root: root}, nil
}

// Root is the schema as decoded JSON (read-only).
func (s *Schema) Root() map[string]any { return s.root }

// Validate checks a JSON document and returns every violation as
// "path: reason", sorted; nil when the document is valid.
func (s *Schema) Validate(doc []byte) []string {
	d := json.NewDecoder(strings.NewReader(string(doc)))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return []string{"(document): not JSON: " + err.Error()}
	}
	var errs []string
	s.check(s.root, v, "", &errs)
	sort.Strings(errs)
	return errs
}

// Resolve follows a local "$ref" ("#/$defs/name").
func (s *Schema) Resolve(node map[string]any) map[string]any {
	ref, ok := node["$ref"].(string)
	if !ok {
		return node
	}
	cur := any(s.root)
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, _ := cur.(map[string]any)
		cur = m[part]
	}
	m, _ := cur.(map[string]any)
	return m
}

func (s *Schema) check(node map[string]any, v any, path string, errs *[]string) {
	node = s.Resolve(node)
	if node == nil {
		*errs = append(*errs, path+": unresolvable $ref")
		return
	}
	add := func(format string, a ...any) {
		p := path
		if p == "" {
			p = "(document)"
		}
		*errs = append(*errs, p+": "+fmt.Sprintf(format, a...))
	}
	if t, ok := node["type"].(string); ok && !hasType(v, t) {
		add("want %s", t)
		return
	}
	if enum, ok := node["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			if fmt.Sprint(e) == fmt.Sprint(v) {
				found = true
			}
		}
		if !found {
			add("%v is not one of %v", v, enum)
		}
	}
	sub := func(n any, v any) []string {
		var e []string
		m, _ := n.(map[string]any)
		s.check(m, v, path, &e)
		return e
	}
	if all, ok := node["allOf"].([]any); ok {
		for _, n := range all {
			*errs = append(*errs, sub(n, v)...)
		}
	}
	if anyOf, ok := node["anyOf"].([]any); ok {
		if matching(anyOf, v, sub) == 0 {
			add("matches none of anyOf")
		}
	}
	if oneOf, ok := node["oneOf"].([]any); ok {
		if n := matching(oneOf, v, sub); n != 1 {
			add("matches %d of oneOf, want 1", n)
		}
	}
	if not, ok := node["not"]; ok && len(sub(not, v)) == 0 {
		add("matches a schema it must not")
	}
	switch x := v.(type) {
	case string:
		n := utf8.RuneCountInString(x)
		if max, ok := num(node["maxLength"]); ok && float64(n) > max {
			add("longer than %v characters", max)
		}
		if min, ok := num(node["minLength"]); ok && float64(n) < min {
			add("shorter than %v characters", min)
		}
		if p, ok := node["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(x) {
			add("does not match %s", p)
		}
	case json.Number:
		f, _ := new(big.Float).SetString(x.String())
		if min, ok := node["minimum"].(float64); ok && f.Cmp(big.NewFloat(min)) < 0 {
			add("below %v", min)
		}
		if max, ok := node["maximum"].(float64); ok && f.Cmp(big.NewFloat(max)) > 0 {
			add("above %v", max)
		}
	case []any:
		if max, ok := num(node["maxItems"]); ok && float64(len(x)) > max {
			add("more than %v items", max)
		}
		if items, ok := node["items"].(map[string]any); ok {
			for i, e := range x {
				s.check(items, e, fmt.Sprintf("%s[%d]", path, i), errs)
			}
		}
	case map[string]any:
		props, _ := node["properties"].(map[string]any)
		if max, ok := num(node["maxProperties"]); ok && float64(len(x)) > max {
			add("more than %v properties", max)
		}
		if req, ok := node["required"].([]any); ok {
			for _, r := range req {
				if _, ok := x[r.(string)]; !ok {
					add("%s is required", r)
				}
			}
		}
		names, _ := node["propertyNames"].(map[string]any)
		for k, val := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if names != nil {
				var e []string
				s.check(names, k, p, &e)
				*errs = append(*errs, e...)
			}
			if ps, ok := props[k].(map[string]any); ok {
				s.check(ps, val, p, errs)
				continue
			}
			switch ap := node["additionalProperties"].(type) {
			case bool:
				if !ap {
					*errs = append(*errs, p+": unknown field")
				}
			case map[string]any:
				s.check(ap, val, p, errs)
			}
		}
	}
}

func matching(list []any, v any, sub func(any, any) []string) int {
	n := 0
	for _, s := range list {
		if len(sub(s, v)) == 0 {
			n++
		}
	}
	return n
}

func num(v any) (float64, bool) {
	f, ok := v.(float64)
	return f, ok
}

func hasType(v any, t string) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		_, ok = new(big.Int).SetString(n.String(), 10)
		return ok
	case "number":
		_, ok := v.(json.Number)
		return ok
	case "null":
		return v == nil
	}
	return false
}
