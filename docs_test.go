package mmsgate

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The docs name ports, log groups and resources; these tests hold them to
// the code (cmd/mmsgate-local's flag defaults, env.json) and template.yaml.

// localPorts reads cmd/mmsgate-local's port flags and their defaults from
// its source: flag.IntVar(&x, "<name>-port", envInt("MMSGATE_…", N), …).
func localPorts(t *testing.T) map[string]int {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "cmd/mmsgate-local/main.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]int{}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) < 3 {
			return true
		}
		if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "IntVar" {
			return true
		}
		name, ok := call.Args[1].(*ast.BasicLit)
		def, ok2 := call.Args[2].(*ast.CallExpr)
		if !ok || !ok2 || len(def.Args) != 2 {
			return true
		}
		flagName, _ := strconv.Unquote(name.Value)
		lit, ok := def.Args[1].(*ast.BasicLit)
		if !ok || !strings.HasSuffix(flagName, "-port") {
			return true
		}
		n2, err := strconv.Atoi(lit.Value)
		if err != nil {
			t.Fatalf("%s default %s", flagName, lit.Value)
		}
		ports[flagName] = n2
		return true
	})
	for _, want := range []string{"sqs-port", "dynamodb-port", "sim-port", "api-port"} {
		if _, ok := ports[want]; !ok {
			t.Fatalf("cmd/mmsgate-local has no -%s flag read the expected way (found %v): update this test", want, ports)
		}
	}
	return ports
}

// docFiles are the Markdown files an application or operator reads.
func docFiles(t *testing.T) map[string]string {
	t.Helper()
	names, _ := filepath.Glob("docs/*.md")
	names = append(names, "README.md")
	files := map[string]string{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		files[n] = string(b)
	}
	return files
}

func TestDocsPortsMatchCode(t *testing.T) {
	ports := localPorts(t)
	known := map[int]bool{}
	for _, p := range ports {
		known[p] = true
	}
	// env.json's (sam local's stand-ins: the same, plus Secrets Manager's own).
	envJSON, err := os.ReadFile("env.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`host\.docker\.internal:(\d+)`).FindAllStringSubmatch(string(envJSON), -1) {
		p, _ := strconv.Atoi(m[1])
		known[p] = true
	}
	const samLocalAPI = 3000 // sam local start-api's default port
	known[samLocalAPI] = true

	// docs/local.md's table: each service's URL on its flag's default.
	local, err := os.ReadFile("docs/local.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile("(?m)^\\|[^|]*\\| `https?://127\\.0\\.0\\.1:(\\d+)[^`]*` \\| `-([a-z]+-port)`").FindAllStringSubmatch(string(local), -1)
	if len(rows) < 4 {
		t.Fatalf("docs/local.md: %d rows of the ports table found, want 4 (service | URL | -flag)", len(rows))
	}
	for _, r := range rows {
		p, _ := strconv.Atoi(r[1])
		if def, ok := ports[r[2]]; !ok || def != p {
			t.Errorf("docs/local.md: -%s on port %d, the code's default is %d", r[2], p, def)
		}
	}
	// Every local URL any document names is on a port the code serves.
	for name, text := range docFiles(t) {
		for _, m := range regexp.MustCompile(`(?:127\.0\.0\.1|localhost):(\d{2,5})`).FindAllStringSubmatch(text, -1) {
			p, _ := strconv.Atoi(m[1])
			if !known[p] {
				t.Errorf("%s names port %d; make dev serves %v (cmd/mmsgate-local), env.json and sam local others", name, p, ports)
			}
		}
	}
}

// templateResources is template.yaml's Resources: logical id → type.
func templateResources(t *testing.T) map[string]string {
	t.Helper()
	res := map[string]string{}
	for id, r := range path(t, raw(t), "Resources").(map[string]any) {
		typ, _ := r.(map[string]any)["Type"].(string)
		res[id] = typ
	}
	return res
}

func TestDocsLogGroupsMatchTemplate(t *testing.T) {
	deploy, err := os.ReadFile("docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	m := raw(t)
	var inTemplate []string
	for id, typ := range templateResources(t) {
		if typ != "AWS::Logs::LogGroup" {
			continue
		}
		name, _ := path(t, m, "Resources", id, "Properties", "LogGroupName").(string)
		name = strings.ReplaceAll(name, "${AWS::StackName}", "<stack>")
		inTemplate = append(inTemplate, name)
		if !strings.Contains(string(deploy), "`"+name+"`") {
			t.Errorf("docs/deploy.md does not name the log group `%s` (%s)", name, id)
		}
	}
	if len(inTemplate) < 4 {
		t.Fatalf("template log groups: %v", inTemplate)
	}
	for _, named := range regexp.MustCompile("`(/mmsgate/<stack>/[^`]+)`").FindAllStringSubmatch(string(deploy), -1) {
		if !slices.Contains(inTemplate, named[1]) {
			t.Errorf("docs/deploy.md names log group %s, which the template does not create (it has %v)", named[1], inTemplate)
		}
	}
}

// TestDocsResourceTable: docs/deploy.md's "What the stack holds" names only
// resources the template has, and every resource an operator looks for
// (data, functions, logs, the API, alarms' topic, policies, queries).
func TestDocsResourceTable(t *testing.T) {
	b, err := os.ReadFile("docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "## What the stack holds")
	if start < 0 {
		t.Fatal(`docs/deploy.md has no "## What the stack holds"`)
	}
	end := strings.Index(doc[start+1:], "\n## ")
	table := doc[start : start+1+end]
	res := templateResources(t)
	named := map[string]bool{}
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.SplitN(line, "|", 3)[1] // the resource column
		for _, m := range regexp.MustCompile("`([A-Z][A-Za-z0-9]+)`").FindAllStringSubmatch(first, -1) {
			named[m[1]] = true
			if _, ok := res[m[1]]; !ok {
				t.Errorf("docs/deploy.md's resource table names %s, which template.yaml does not have", m[1])
			}
		}
	}
	tracked := []string{"AWS::SQS::Queue", "AWS::SQS::QueuePolicy", "AWS::DynamoDB::Table", "AWS::SecretsManager::Secret",
		"AWS::Serverless::Function", "AWS::Logs::LogGroup", "AWS::ApiGatewayV2::Api", "AWS::SNS::Topic",
		"AWS::CloudWatch::Dashboard", "AWS::IAM::ManagedPolicy", "AWS::Logs::QueryDefinition"}
	for id, typ := range res {
		if slices.Contains(tracked, typ) && !named[id] {
			t.Errorf("docs/deploy.md's resource table does not name %s (%s)", id, typ)
		}
	}
}

// TestDocsNoChangelogVoice: reference docs describe what is; what changed
// belongs in CHANGELOG.md.
func TestDocsNoChangelogVoice(t *testing.T) {
	voice := regexp.MustCompile(`(?i)\b(until now|upgrading from|used to be|previously|formerly|in earlier versions|as of this (release|version)|the old (version|design))\b`)
	for name, text := range docFiles(t) {
		for _, m := range voice.FindAllString(text, -1) {
			t.Errorf("%s: %q is changelog voice; say what is, and put the change in CHANGELOG.md", name, m)
		}
	}
}
