package rehearsal

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBrokenTemplate deploys broken copies of template.yaml and runs them
// end to end: each must fail, naming the resource and the reason. It
// deploys on moto and runs the functions, so it runs from `make
// deploy-rehearsal` (MMSGATE_REHEARSAL names the Python with the pinned
// translator), not from `make test`.
func TestBrokenTemplate(t *testing.T) {
	python := os.Getenv("MMSGATE_REHEARSAL")
	if python == "" || testing.Short() {
		t.Skip("set MMSGATE_REHEARSAL to the Python with the pinned aws-sam-translator (make deploy-rehearsal)")
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	arts, local, err := Build(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, old, new string
		want           []string // in the error
	}{
		{"missing permission", // the sender's grant on the API key's secret
			"            - Sid: ApiKeySecret\n              Effect: Allow\n              Action: secretsmanager:GetSecretValue\n              Resource: !If [CreateApiKeySecret, !Ref SkycoreSecret, !Ref ExistingApiKeySecretArn]\n", "",
			[]string{"SendMmsFunction: secretsmanager:GetSecretValue on arn:aws:secretsmanager:", "mmsgate/dev/skycore", "not allowed by SendMmsFunctionRole"}},
		{"wrong environment variable", // the sender pointed at the postback token's secret
			"          SKYCORE_SECRET_ID: !If [CreateApiKeySecret, !Ref SkycoreSecret, !Ref ExistingApiKeySecretArn]",
			"          SKYCORE_SECRET_ID: !If [CreatePostbackSecret, !Ref PostbackSecret, !Ref ExistingPostbackSecretArn]",
			[]string{"SendMmsFunction: secretsmanager:GetSecretValue on", "mmsgate/dev/postback-token", "not allowed by SendMmsFunctionRole"}},
		{"queue policy denies the sender",
			"                aws:PrincipalArn: [!GetAtt SendMmsFunctionRole.Arn, !GetAtt PostbackFunctionRole.Arn]",
			"                aws:PrincipalArn: [!GetAtt PostbackFunctionRole.Arn]",
			[]string{"SendMmsFunction: sqs:SendMessage on arn:aws:sqs:", "ReceiptCheckQueue", "denied by queue policy OnlyTheSenderAndPostbackSchedule"}},
		{"the sender's PutEvents grant on another bus", // the rehearsal sets EventBusName
			"                Resource: !Sub arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}",
			"                Resource: !Sub arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default",
			[]string{"SendMmsFunction: events:PutEvents on arn:aws:events:us-east-1:123456789012:event-bus/" + rehearsalBus + " not allowed by SendMmsFunctionRole"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(string(orig), c.old) {
				t.Fatalf("template.yaml no longer has %q: update the test", c.old)
			}
			broken := filepath.Join(t.TempDir(), "template.yaml")
			if err := os.WriteFile(broken, []byte(strings.Replace(string(orig), c.old, c.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			_, err := Run(ctx, Options{Template: broken, Samconfig: filepath.Join(root, "samconfig.toml"), Python: python,
				Emulator: filepath.Join(root, ".bin", "aws-lambda-rie"), Bootstraps: local, Artifacts: arts, Quick: true})
			if err == nil {
				t.Fatal("the rehearsal passed a broken template")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
		})
	}
}
