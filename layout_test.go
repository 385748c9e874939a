package mmsgate

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// goList runs `go list` with args and returns its lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Fields(string(out))
}

// TestLayout keeps the boundary visible: pkg/ is exactly what the Lambda
// functions link, and a function links nothing of this module outside
// pkg/ and functions/ (local tooling lives in internal/).
func TestLayout(t *testing.T) {
	mod := goList(t, "-m")[0]
	deps := goList(t, "-deps", "./functions/...")
	var linked []string
	for _, d := range deps {
		rel, ok := strings.CutPrefix(d, mod+"/")
		if !ok {
			continue // the standard library and other modules
		}
		if !strings.HasPrefix(rel, "pkg/") && !strings.HasPrefix(rel, "functions/") {
			t.Errorf("a function links %s: only pkg/ and functions/ may ship to Lambda", rel)
		}
		if strings.HasPrefix(rel, "pkg/") {
			linked = append(linked, rel)
		}
	}
	var inPkg []string
	for _, p := range goList(t, "./pkg/...") {
		inPkg = append(inPkg, strings.TrimPrefix(p, mod+"/"))
	}
	slices.Sort(linked)
	slices.Sort(inPkg)
	if diff := cmp.Diff(inPkg, linked); diff != "" {
		t.Errorf("pkg/ (-) differs from what the functions link (+); move local tooling to internal/:\n%s", diff)
	}
	for _, p := range inPkg {
		name := p[strings.LastIndexByte(p, '/')+1:]
		if slices.Contains([]string{"util", "utils", "common", "types", "helpers", "models"}, name) {
			t.Errorf("%s: no package named %s", p, name)
		}
	}
}
