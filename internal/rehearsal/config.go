package rehearsal

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/mmsgate/mmsgate/internal/dynalite"
)

// moto's defaults: the account and region every resource is created in.
const (
	Region  = "us-east-1"
	Account = "123456789012"
)

func repoRoot() (string, error) { return dynalite.Root() }

// Samconfig reads samconfig.toml's [section] tables (key = "string" or
// key = """multi-line string""" with line-ending backslashes).
func Samconfig(path string) (map[string]map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]string{"": {}}
	var sec string
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "["):
			sec = strings.Trim(l, "[]")
			out[sec] = map[string]string{}
		default:
			k, v, ok := strings.Cut(l, " = ")
			if !ok {
				return nil, fmt.Errorf("%s line %d: %q", path, i+1, l)
			}
			if v == `"""\` {
				var sb strings.Builder
				for i++; i < len(lines) && strings.TrimSpace(lines[i]) != `"""`; i++ {
					sb.WriteString(strings.TrimSuffix(strings.TrimSpace(lines[i]), `\`))
				}
				v = sb.String()
			} else if s, err := strconv.Unquote(v); err == nil {
				v = s
			}
			out[sec][k] = v
		}
	}
	return out, nil
}

// Overrides parses sam deploy's parameter_overrides (Key=value Key="value").
func Overrides(s string) map[string]string {
	out := map[string]string{}
	for _, mm := range regexp.MustCompile(`(\w+)=("(?:[^"\\]|\\.)*"|\S+)`).FindAllStringSubmatch(s, -1) {
		out[mm[1]] = strings.Trim(mm[2], `"`)
	}
	return out
}

// DeployConfig is what `sam deploy --config-env env` takes from samconfig.toml.
type DeployConfig struct {
	StackName string
	Params    map[string]string
}

// ReadDeployConfig reads env's stack name and parameter overrides.
func ReadDeployConfig(path, env string) (DeployConfig, error) {
	sc, err := Samconfig(path)
	if err != nil {
		return DeployConfig{}, err
	}
	dep, ok := sc[env+".deploy.parameters"]
	if !ok {
		return DeployConfig{}, fmt.Errorf("%s: no [%s.deploy.parameters]", path, env)
	}
	c := DeployConfig{StackName: sc[env+".global.parameters"]["stack_name"], Params: Overrides(dep["parameter_overrides"])}
	if c.StackName == "" {
		c.StackName = dep["stack_name"]
	}
	if c.StackName == "" {
		return c, fmt.Errorf("%s: no stack_name for %s", path, env)
	}
	return c, nil
}
