package mmsgate

import (
	"os"
	"os/exec"
	"path/filepath"
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

// TestStandInsOnlyForShort: fakesqs and fakesecrets exist for `go test
// -short` (TestShortNeedsOnlyGo) and the soak's timing windows (stack's
// Options.InProcess); everything else runs on moto. So only localenv
// (behind Options.InProcess) may link them, and only the tests that hold
// them to moto's behaviour may use them besides.
func TestStandInsOnlyForShort(t *testing.T) {
	mod := goList(t, "-m")[0]
	stand := map[string]bool{mod + "/internal/fakesqs": true, mod + "/internal/fakesecrets": true}
	tests := map[string]bool{"internal/moto": true, "internal/faultproxy": true, "pkg/secret": true,
		"internal/fakesqs": true, "internal/fakesecrets": true}
	format := "{{.ImportPath}}|{{join .Imports \",\"}}|{{join .TestImports \",\"}},{{join .XTestImports \",\"}}"
	for _, line := range goList(t, "-f", format, "./...") {
		f := strings.Split(line, "|")
		rel := strings.TrimPrefix(f[0], mod+"/")
		for _, imp := range strings.Split(f[1], ",") {
			if stand[imp] && rel != "internal/localenv" {
				t.Errorf("%s links %s: only localenv may (for -short)", rel, strings.TrimPrefix(imp, mod+"/"))
			}
		}
		for _, imp := range strings.Split(f[2], ",") {
			if stand[imp] && !tests[rel] {
				t.Errorf("%s's tests import %s: outside -short, tests run on moto (localenv)", rel, strings.TrimPrefix(imp, mod+"/"))
			}
		}
	}
}

// TestShortNeedsOnlyGo keeps the promise of `go test -short ./...`: it
// passes on a machine with nothing but Go, no Node (dynalite), no Python
// (moto), no emulator. That is why in-process stand-ins (fakesqs,
// fakesecrets) exist at all: moto cannot serve there. Built with -race (as
// `make test`'s first step runs it), it runs the short suite with -race,
// and the PATH has the C compiler the race detector needs, nothing else.
func TestShortNeedsOnlyGo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test -short itself")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	goBin, _ = filepath.EvalSymlinks(goBin)
	path := filepath.Dir(goBin)
	args := []string{"test", "-short", "-count=1"}
	if raceEnabled {
		// Only the C toolchain -race builds with, linked into a directory of its own.
		dir := t.TempDir()
		for _, tool := range []string{"gcc", "cc", "as", "ld"} {
			p, err := exec.LookPath(tool)
			if err != nil {
				t.Fatalf("-race needs a C toolchain: %v", err)
			}
			if p, err = filepath.EvalSymlinks(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
				t.Fatal(err)
			}
		}
		path += string(os.PathListSeparator) + dir
		args = append(args, "-race", "-skip", "^TestShortNeedsOnlyGo$")
	}
	env := []string{"PATH=" + path, "HOME=" + os.Getenv("HOME"), "MOTO_SERVER=/nonexistent"}
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY", "GOFLAGS", "GONOSUMDB", "GOSUMDB", "GOTOOLCHAIN"} {
		out, err := exec.Command("go", "env", k).Output()
		if err != nil {
			t.Fatal(err)
		}
		env = append(env, k+"="+strings.TrimSpace(string(out)))
	}
	cmd := exec.Command(goBin, append(args, "./...")...)
	cmd.Env = env
	// Each package's line as it finishes: the run takes minutes.
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go test %s ./... with only Go on PATH (its output above): %v", strings.Join(args[1:], " "), err)
	}
}
