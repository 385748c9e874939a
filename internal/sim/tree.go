package sim

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// node is a generic XML element: the simulator never uses the client's
// types.
type node struct {
	Name     string  `json:"name"`
	Text     string  `json:"text,omitempty"`
	Children []*node `json:"children,omitempty"`
}

func (n *node) all(name string) []*node {
	var out []*node
	for _, c := range n.Children {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

func (n *node) child(name string) *node {
	for _, c := range n.Children {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// text of the first child called name, and whether it exists.
func (n *node) text(name string) (string, bool) {
	if c := n.child(name); c != nil {
		return c.Text, true
	}
	return "", false
}

const (
	maxDepth  = 8
	maxTokens = 20000
)

// parseTree reads one XML document into a tree; text is kept as written
// (whitespace included) for leaf elements.
func parseTree(doc []byte) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(doc))
	var stack []*node
	var root *node
	for tokens := 0; ; tokens++ {
		if tokens > maxTokens {
			return nil, errors.New("too many tokens")
		}
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) >= maxDepth {
				return nil, errors.New("nesting too deep")
			}
			n := &node{Name: t.Name.Local}
			if len(stack) == 0 {
				if root != nil {
					return nil, errors.New("more than one root element")
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].Text += string(t)
			} else if len(bytes.TrimSpace(t)) > 0 {
				return nil, errors.New("text outside the root element")
			}
		case xml.Directive:
			return nil, errors.New("DOCTYPE and other directives are not accepted")
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	// Text of elements with children is only indentation.
	var trim func(*node)
	trim = func(n *node) {
		if len(n.Children) > 0 {
			n.Text = ""
			for _, c := range n.Children {
				trim(c)
			}
		}
	}
	trim(root)
	return root, nil
}

// fromParams turns the GET form (lower-case names, customtext_N, data_name)
// into the tree the XML form gives.
func fromParams(q url.Values) *node {
	root := &node{Name: "REQUEST"}
	data := &node{Name: "DATA"}
	var texts []*node
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := q.Get(k)
		lk := strings.ToLower(k)
		switch {
		case strings.HasPrefix(lk, "customtext_"):
			slide := strings.TrimPrefix(lk, "customtext_")
			texts = append(texts, &node{Name: "CUSTOMTEXT", Children: []*node{{Name: "VALUE", Text: v}, {Name: "SLIDE", Text: slide}}})
		case strings.HasPrefix(lk, "data_"):
			data.Children = append(data.Children, &node{Name: strings.ToUpper(strings.TrimPrefix(lk, "data_")), Text: v})
		default:
			root.Children = append(root.Children, &node{Name: strings.ToUpper(k), Text: v})
		}
	}
	sort.SliceStable(texts, func(i, j int) bool {
		a, _ := strconv.Atoi(texts[i].Children[1].Text)
		b, _ := strconv.Atoi(texts[j].Children[1].Text)
		return a < b
	})
	root.Children = append(root.Children, texts...)
	if len(data.Children) > 0 {
		root.Children = append(root.Children, data)
	}
	return root
}

// flatten lists leaf paths and values, for the inspection API.
func (n *node) flatten() map[string]string {
	out := map[string]string{}
	var walk func(prefix string, n *node)
	walk = func(prefix string, n *node) {
		counts := map[string]int{}
		for _, c := range n.Children {
			key := prefix + c.Name
			if k := counts[c.Name]; k > 0 {
				key = fmt.Sprintf("%s[%d]", key, k)
			}
			counts[c.Name]++
			if len(c.Children) == 0 {
				out[key] = c.Text
			} else {
				walk(key+".", c)
			}
		}
	}
	walk("", n)
	return out
}
