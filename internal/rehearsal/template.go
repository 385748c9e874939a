package rehearsal

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Template is a transformed (plain CloudFormation) template.
type Template struct {
	AWSTemplateFormatVersion string `json:",omitempty"`
	Description              string `json:",omitempty"`
	Parameters               map[string]map[string]any
	Conditions               map[string]any
	Mappings                 map[string]map[string]map[string]any `json:",omitempty"`
	Resources                map[string]*Resource
	Outputs                  map[string]struct {
		Value     any
		Condition string
	}
	Metadata map[string]any
}

// Resource is one resource of a Template.
type Resource struct {
	Type                string
	Condition           string         `json:",omitempty"`
	DependsOn           any            `json:",omitempty"`
	DeletionPolicy      string         `json:",omitempty"`
	Properties          map[string]any `json:",omitempty"`
	Metadata            any            `json:",omitempty"`
	UpdateReplacePolicy string         `json:",omitempty"`
}

// TranslatorVersion is the pinned aws-sam-translator (the Makefile installs
// it; Transform refuses any other).
const TranslatorVersion = "1.110.0"

// Transform runs the SAM transform as `sam deploy` does (transform.py) on
// the template at path; functions' CodeUri become s3://bucket/<LogicalId>.zip.
func Transform(python, path, bucket string) ([]byte, *Template, error) {
	script, err := scriptPath()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(python, script, path, bucket)
	cmd.Env = append(os.Environ(), "AWS_DEFAULT_REGION="+Region)
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return nil, nil, fmt.Errorf("SAM transform of %s: %v\n%s", path, err, ee.Stderr)
		}
		return nil, nil, fmt.Errorf("SAM transform: %w", err)
	}
	var t Template
	if err := json.Unmarshal(out, &t); err != nil {
		return nil, nil, fmt.Errorf("SAM transform output: %w", err)
	}
	if v, _ := t.Metadata["TranslatorVersion"].(string); v != TranslatorVersion {
		return nil, nil, fmt.Errorf("aws-sam-translator %s, want the pinned %s (make tools)", v, TranslatorVersion)
	}
	return out, &t, nil
}

func scriptPath() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "internal", "rehearsal", "transform.py"), nil
}

// noValue is AWS::NoValue: the property or list item disappears.
type noValue struct{}

// Resolver evaluates intrinsic functions with the stack's real values.
type Resolver struct {
	T      *Template
	Params map[string]string
	// Ref and Attr answer for resources (false: unknown yet).
	Ref  func(logical string) (string, bool)
	Attr func(logical, attr string) (string, bool)
	// Secret reads a secret's value for a {{resolve:secretsmanager:…}} reference.
	Secret    func(id, key string) (string, error)
	StackName string
}

// Condition evaluates a named condition.
func (r *Resolver) Condition(name string) (bool, error) {
	c, ok := r.T.Conditions[name]
	if !ok {
		return false, fmt.Errorf("no condition %s", name)
	}
	return r.cond(c)
}

func (r *Resolver) cond(c any) (bool, error) {
	m, ok := c.(map[string]any)
	if !ok || len(m) != 1 {
		return false, fmt.Errorf("condition %v", c)
	}
	for k, v := range m {
		args, _ := v.([]any)
		switch k {
		case "Condition":
			return r.Condition(v.(string))
		case "Fn::Equals":
			a, err := r.Eval(args[0])
			if err != nil {
				return false, err
			}
			b, err := r.Eval(args[1])
			if err != nil {
				return false, err
			}
			return fmt.Sprint(a) == fmt.Sprint(b), nil
		case "Fn::Not":
			b, err := r.cond(args[0])
			return !b, err
		case "Fn::And", "Fn::Or":
			and := k == "Fn::And"
			for _, a := range args {
				b, err := r.cond(a)
				if err != nil {
					return false, err
				}
				if b != and {
					return b, nil
				}
			}
			return and, nil
		}
	}
	return false, fmt.Errorf("condition %v", c)
}

// param is a parameter's value (the override, else the default).
func (r *Resolver) param(name string) (string, bool) {
	if v, ok := r.Params[name]; ok {
		return v, true
	}
	p, ok := r.T.Parameters[name]
	if !ok {
		return "", false
	}
	return fmt.Sprint(p["Default"]), true
}

var pseudo = map[string]string{"AWS::Region": Region, "AWS::AccountId": Account, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}

func (r *Resolver) ref(name string) (string, error) {
	if name == "AWS::StackName" {
		return r.StackName, nil
	}
	if v, ok := pseudo[name]; ok {
		return v, nil
	}
	if v, ok := r.param(name); ok {
		return v, nil
	}
	if r.Ref != nil {
		if v, ok := r.Ref(name); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("%s (Ref) is not created", name)
}

// Eval evaluates every intrinsic function in v (Ref, Fn::GetAtt, Fn::Sub,
// Fn::If, Fn::Join, Fn::Select, dynamic references to secrets).
func (r *Resolver) Eval(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, a := range x {
				switch k {
				case "Ref":
					if a == "AWS::NoValue" {
						return noValue{}, nil
					}
					v, err := r.ref(a.(string))
					if ty, _ := r.T.Parameters[a.(string)]["Type"].(string); err == nil && (ty == "CommaDelimitedList" || strings.HasPrefix(ty, "List<")) {
						var list []any
						for _, e := range strings.Split(v, ",") {
							list = append(list, e)
						}
						return list, nil
					}
					return v, err
				case "Fn::GetAtt":
					parts := toStrings(a)
					if r.Attr != nil {
						if v, ok := r.Attr(parts[0], parts[1]); ok {
							return v, nil
						}
					}
					return nil, fmt.Errorf("%s.%s (Fn::GetAtt) is not created", parts[0], parts[1])
				case "Fn::If":
					args := a.([]any)
					b, err := r.Condition(args[0].(string))
					if err != nil {
						return nil, err
					}
					if b {
						return r.Eval(args[1])
					}
					return r.Eval(args[2])
				case "Fn::Sub":
					return r.sub(a)
				case "Fn::Join":
					args := a.([]any)
					items, err := r.Eval(args[1])
					if err != nil {
						return nil, err
					}
					list, ok := items.([]any)
					if !ok {
						return nil, fmt.Errorf("Fn::Join of %v", items)
					}
					var ss []string
					for _, it := range list {
						ss = append(ss, fmt.Sprint(it))
					}
					return strings.Join(ss, args[0].(string)), nil
				case "Fn::FindInMap":
					args, ok := a.([]any)
					if !ok || len(args) != 3 {
						return nil, fmt.Errorf("Fn::FindInMap of %v", a)
					}
					var keys [3]string
					for i, e := range args {
						ev, err := r.Eval(e)
						if err != nil {
							return nil, err
						}
						keys[i] = fmt.Sprint(ev)
					}
					v, ok := r.T.Mappings[keys[0]][keys[1]][keys[2]]
					if !ok {
						return nil, fmt.Errorf("Fn::FindInMap: %s has no %s.%s", keys[0], keys[1], keys[2])
					}
					return v, nil
				case "Fn::Select":
					args := a.([]any)
					items, err := r.Eval(args[1])
					if err != nil {
						return nil, err
					}
					var i int
					fmt.Sscan(fmt.Sprint(args[0]), &i)
					return items.([]any)[i], nil
				default:
					if strings.HasPrefix(k, "Fn::") { // passed on unevaluated, it would reach an API as text
						return nil, fmt.Errorf("%s is not evaluated by the rehearsal", k)
					}
				}
			}
		}
		out := map[string]any{}
		for k, e := range x {
			ev, err := r.Eval(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if _, drop := ev.(noValue); !drop {
				out[k] = ev
			}
		}
		return out, nil
	case []any:
		out := []any{}
		for _, e := range x {
			ev, err := r.Eval(e)
			if err != nil {
				return nil, err
			}
			if _, drop := ev.(noValue); !drop {
				out = append(out, ev)
			}
		}
		return out, nil
	case string:
		return r.dynamic(x)
	}
	return v, nil
}

var subVar = regexp.MustCompile(`\$\{([^}!]+)\}`)

func (r *Resolver) sub(a any) (any, error) {
	var s string
	vars := map[string]any{}
	switch x := a.(type) {
	case string:
		s = x
	case []any:
		s = x[0].(string)
		m, _ := x[1].(map[string]any)
		for k, e := range m {
			ev, err := r.Eval(e)
			if err != nil {
				return nil, err
			}
			vars[k] = ev
		}
	}
	var ferr error
	out := subVar.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		if v, ok := vars[name]; ok {
			return fmt.Sprint(v)
		}
		var v any
		var err error
		if l, attr, ok := strings.Cut(name, "."); ok && !strings.HasPrefix(name, "AWS::") {
			v, err = r.Eval(map[string]any{"Fn::GetAtt": []any{l, attr}})
		} else {
			v, err = r.ref(name)
		}
		if err != nil && ferr == nil {
			ferr = err
		}
		return fmt.Sprint(v)
	})
	if ferr != nil {
		return nil, ferr
	}
	return r.dynamic(out)
}

var dynRef = regexp.MustCompile(`\{\{resolve:secretsmanager:(.+?):SecretString:([A-Za-z0-9_]+)\}\}`)

// dynamic resolves {{resolve:secretsmanager:id:SecretString:key}}.
func (r *Resolver) dynamic(s string) (any, error) {
	if !strings.Contains(s, "{{resolve:") || r.Secret == nil {
		return s, nil
	}
	var ferr error
	out := dynRef.ReplaceAllStringFunc(s, func(m string) string {
		p := dynRef.FindStringSubmatch(m)
		v, err := r.Secret(p[1], p[2])
		if err != nil && ferr == nil {
			ferr = fmt.Errorf("dynamic reference to %s: %w", p[1], err)
		}
		return v
	})
	return out, ferr
}

func toStrings(a any) []string {
	switch x := a.(type) {
	case string:
		l, attr, _ := strings.Cut(x, ".")
		return []string{l, attr}
	case []any:
		return []string{fmt.Sprint(x[0]), fmt.Sprint(x[1])}
	}
	return []string{"", ""}
}

// ResolveConditions returns a copy of t for moto's engine with every Fn::If
// decided by the parameters and the resources whose Condition is false
// left out. moto 5.2.1 differs from CloudFormation here: an Fn::If inside a
// list (a role's Policies, which the transform writes for an optional
// statement) fails its create with an internal error.
func ResolveConditions(t *Template, params map[string]string, stackName string) (*Template, error) {
	r := &Resolver{T: t, Params: params, StackName: stackName}
	var resolveIf func(v any) (any, error)
	resolveIf = func(v any) (any, error) {
		switch x := v.(type) {
		case map[string]any:
			if a, ok := x["Fn::If"]; ok && len(x) == 1 {
				args := a.([]any)
				b, err := r.Condition(args[0].(string))
				if err != nil {
					return nil, err
				}
				if b {
					return resolveIf(args[1])
				}
				return resolveIf(args[2])
			}
			if ref, ok := x["Ref"]; ok && len(x) == 1 && ref == "AWS::NoValue" {
				return noValue{}, nil
			}
			out := map[string]any{}
			for k, e := range x {
				ev, err := resolveIf(e)
				if err != nil {
					return nil, err
				}
				if _, drop := ev.(noValue); !drop {
					out[k] = ev
				}
			}
			return out, nil
		case []any:
			out := []any{}
			for _, e := range x {
				ev, err := resolveIf(e)
				if err != nil {
					return nil, err
				}
				if _, drop := ev.(noValue); !drop {
					out = append(out, ev)
				}
			}
			return out, nil
		}
		return v, nil
	}
	out := *t
	out.Resources = map[string]*Resource{}
	for name, res := range t.Resources {
		if res.Condition != "" {
			on, err := r.Condition(res.Condition)
			if err != nil {
				return nil, err
			}
			if !on {
				continue
			}
		}
		props, err := resolveIf(map[string]any(res.Properties))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		c := *res
		c.Condition = ""
		c.Properties = props.(map[string]any)
		out.Resources[name] = &c
	}
	return &out, nil
}

// Substitute replaces Ref to the named resources (and ${Name} in Fn::Sub
// strings) by their physical ids: the resources the rehearsal created
// before the engine ran.
func Substitute(v any, ids map[string]string) any {
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["Ref"].(string); ok && len(x) == 1 {
			if id, ok := ids[ref]; ok {
				return id
			}
		}
		out := map[string]any{}
		for k, e := range x {
			out[k] = Substitute(e, ids)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = Substitute(e, ids)
		}
		return out
	case string:
		for name, id := range ids {
			x = strings.ReplaceAll(x, "${"+name+"}", id)
		}
		return x
	}
	return v
}

// Types lists the resource types of t, sorted.
func (t *Template) Types() []string {
	seen := map[string]bool{}
	for _, r := range t.Resources {
		seen[r.Type] = true
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
