package rehearsal

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// CheckDeployerPermissions checks that docs/deploy.md's table of the
// deployer's permissions has a row for every resource type of the
// transformed template (every condition's resources included).
func CheckDeployerPermissions(doc string, t *Template) error {
	b, err := os.ReadFile(doc)
	if err != nil {
		return err
	}
	s := string(b)
	i := strings.Index(s, "## The deployer's IAM permissions")
	if i < 0 {
		return fmt.Errorf("%s has no section \"The deployer's IAM permissions\"", doc)
	}
	s = s[i+3:]
	if j := strings.Index(s, "\n## "); j >= 0 {
		s = s[:j]
	}
	listed := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\| (AWS::[A-Za-z0-9]+::[A-Za-z0-9]+) \| *[^| ]`).FindAllStringSubmatch(s, -1) {
		listed[m[1]] = true
	}
	var missing []string
	for _, ty := range t.Types() {
		if !listed[ty] {
			missing = append(missing, ty)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s lists no deployer permissions for %s", doc, strings.Join(missing, ", "))
	}
	return nil
}
