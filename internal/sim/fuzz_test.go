package sim

import (
	"bytes"
	"encoding/xml"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// encode writes a tree back as XML (leaf text escaped).
func encode(b *bytes.Buffer, n *node) {
	b.WriteString("<" + n.Name + ">")
	if len(n.Children) == 0 {
		xml.EscapeText(b, []byte(n.Text))
	}
	for _, c := range n.Children {
		encode(b, c)
	}
	b.WriteString("</" + n.Name + ">")
}

// FuzzParseTree: the simulator's request parser never panics, respects its
// limits, and what it parses re-encodes to a document that parses the same.
func FuzzParseTree(f *testing.F) {
	f.Add([]byte(valid()))
	f.Add([]byte(`<REQUEST><CUSTOMTEXT><VALUE>a &amp; b</VALUE><SLIDE>1</SLIDE></CUSTOMTEXT><DATA><X/></DATA></REQUEST>`))
	f.Add([]byte(`<!DOCTYPE x><REQUEST/>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		tree, err := parseTree(doc)
		if err != nil {
			return
		}
		var depth func(*node) int
		depth = func(n *node) int {
			d := 0
			for _, c := range n.Children {
				d = max(d, depth(c))
			}
			return d + 1
		}
		if depth(tree) > maxDepth {
			t.Fatalf("depth %d over the limit", depth(tree))
		}
		var b bytes.Buffer
		encode(&b, tree)
		again, err := parseTree(b.Bytes())
		if err != nil {
			t.Fatalf("re-encoded tree does not parse: %v\n%s", err, b.Bytes())
		}
		if diff := cmp.Diff(tree.flatten(), again.flatten()); diff != "" {
			t.Fatalf("round trip changed the tree (-first +second):\n%s", diff)
		}
	})
}
