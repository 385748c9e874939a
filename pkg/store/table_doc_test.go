package store

import (
	"fmt"
	"go/parser"
	"go/token"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestItemTableMatchesCode: the package doc's table of items and
// attributes names exactly the attributes the code's expressions name
// (names, trkNames, receiptNames, supNames, inNames and its pub_<kind>, the postback keys' p_ and d_,
// the history slots), so the table a reader trusts stays the table.
func TestItemTableMatchesCode(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "store.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	doc := f.Doc.Text()
	_, table, ok := strings.Cut(doc, "item               attribute       meaning\n")
	if !ok {
		t.Fatal("store.go's package doc has no item table")
	}
	table, _, _ = strings.Cut(table, "\n\n")
	inDoc := map[string]bool{}
	for _, line := range strings.Split(table, "\n") {
		// Columns: item (19 wide), attribute, meaning. A row whose
		// attribute column is blank continues the meaning above.
		line = strings.TrimPrefix(line, "\t")
		if len(line) <= 19 || line[19] == ' ' {
			continue
		}
		attrs, _, _ := strings.Cut(line[19:], " ")
		for _, a := range strings.Split(attrs, ",") {
			if lo, hi, ok := strings.Cut(a, ".."); ok { // h00..h19
				var from, to int
				fmt.Sscanf(lo, "h%d", &from)
				fmt.Sscanf(hi, "h%d", &to)
				for i := from; i <= to; i++ {
					inDoc[fmt.Sprintf("h%02d", i)] = true
				}
				continue
			}
			inDoc[a] = true
		}
	}
	inCode := map[string]bool{}
	for _, m := range []map[string]string{names, trkNames, receiptNames, supNames, inNames, postbackNames("<key>"), {"#pub": "pub_<kind>"}} {
		for _, v := range m {
			inCode[v] = true
		}
	}
	delete(inCode, "pk") // the key, in the item column
	want, got := slices.Sorted(maps.Keys(inCode)), slices.Sorted(maps.Keys(inDoc))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("attributes the code names (-) and store.go's table names (+):\n%s", diff)
	}
}
