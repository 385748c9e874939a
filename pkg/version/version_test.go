package version

import (
	"os"
	"regexp"
	"testing"
)

// semver is semver.org's grammar, simplified: MAJOR.MINOR.PATCH with an
// optional pre-release and build metadata.
var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

func TestVersionIsSemver(t *testing.T) {
	if !semver.MatchString(Version) {
		t.Errorf("Version = %q, want a semantic version such as 1.2.3 or 1.3.0-dev", Version)
	}
}

// TestChangelogNamesVersion: the version in code is the changelog's
// newest entry, or the development version after it.
func TestChangelogNamesVersion(t *testing.T) {
	b, err := os.ReadFile("../../CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^## \[(\d+\.\d+\.\d+)\]`).FindSubmatch(b)
	if m == nil {
		t.Fatal("CHANGELOG.md has no released version heading (## [x.y.z] - date)")
	}
	newest := string(m[1])
	base := regexp.MustCompile(`^\d+\.\d+\.\d+`).FindString(Version)
	if base == newest && Version != newest {
		t.Errorf("Version %s is a pre-release of %s, which CHANGELOG.md says is already released", Version, newest)
	}
	if !regexp.MustCompile(`(?m)^## \[Unreleased\]`).Match(b) {
		t.Error("CHANGELOG.md has no ## [Unreleased] section")
	}
}
