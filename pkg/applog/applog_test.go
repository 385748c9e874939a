package applog

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/mmsgate/mmsgate/pkg/version"
)

func TestJSONWithRequestID(t *testing.T) {
	t.Setenv("LOG_LEVEL", "WARN")
	var b bytes.Buffer
	log := New(&b)
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-1"})
	log.InfoContext(ctx, "hidden")
	log.WarnContext(ctx, "shown", "k", "v")
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("want one JSON line at WARN, got %q", b.String())
	}
	if got["message"] != "shown" || got["level"] != "WARN" || got["requestId"] != "req-1" || got["timestamp"] == nil || got["k"] != "v" || got["version"] != version.Version {
		t.Errorf("log line = %v", got)
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"": slog.LevelInfo, "debug": slog.LevelDebug, "TRACE": slog.LevelDebug,
		"warn": slog.LevelWarn, "ERROR": slog.LevelError, "FATAL": slog.LevelError, "nonsense": slog.LevelInfo} {
		if got := ParseLevel(in); got != want {
			t.Errorf("ParseLevel(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestLambdaLevelFallback(t *testing.T) {
	t.Setenv("LOG_LEVEL", "")
	t.Setenv("AWS_LAMBDA_LOG_LEVEL", "ERROR")
	var b bytes.Buffer
	New(&b).Warn("hidden")
	if b.Len() != 0 {
		t.Errorf("AWS_LAMBDA_LOG_LEVEL=ERROR let a WARN through: %s", b.String())
	}
}

// TestLogLevelWinsOverLambdaLevel: template.yaml fixes Lambda's
// ApplicationLogLevel (AWS_LAMBDA_LOG_LEVEL) at DEBUG so that EMF lines,
// which have no level, always pass Lambda's filter; the deployed LogLevel
// reaches the app as LOG_LEVEL and must be the one that filters.
func TestLogLevelWinsOverLambdaLevel(t *testing.T) {
	for _, tc := range []struct{ app, lambda, hidden, shown string }{
		{"WARN", "DEBUG", "info", "warn"},
		{"ERROR", "DEBUG", "warn", "error"},
		{"INFO", "DEBUG", "debug", "info"},
		{"DEBUG", "ERROR", "", "debug"},
	} {
		t.Setenv("LOG_LEVEL", tc.app)
		t.Setenv("AWS_LAMBDA_LOG_LEVEL", tc.lambda)
		var b bytes.Buffer
		log := New(&b)
		log.Debug("debug")
		log.Info("info")
		log.Warn("warn")
		log.Error("error")
		out := b.String()
		if tc.hidden != "" && strings.Contains(out, `"message":"`+tc.hidden+`"`) {
			t.Errorf("LOG_LEVEL=%s AWS_LAMBDA_LOG_LEVEL=%s: %s shown:\n%s", tc.app, tc.lambda, tc.hidden, out)
		}
		if !strings.Contains(out, `"message":"`+tc.shown+`"`) {
			t.Errorf("LOG_LEVEL=%s AWS_LAMBDA_LOG_LEVEL=%s: %s hidden:\n%s", tc.app, tc.lambda, tc.shown, out)
		}
	}
}
