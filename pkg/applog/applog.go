// Package applog builds mmsgate's one slog logger: JSON lines in the shape
// Lambda's JSON log format expects (timestamp, level, message), with the
// invocation's requestId, at LOG_LEVEL (or AWS_LAMBDA_LOG_LEVEL).
package applog

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/mmsgate/mmsgate/pkg/version"
)

// New returns a JSON logger writing to w at the level the environment asks.
// Every line carries the build's version (pkg/version): during a deploy old
// and new instances run side by side, and the logs say which wrote what.
func New(w io.Writer) *slog.Logger {
	level := os.Getenv("LOG_LEVEL")
	if level == "" {
		level = os.Getenv("AWS_LAMBDA_LOG_LEVEL")
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: ParseLevel(level), ReplaceAttr: lambdacontext.ReplaceAttr})
	return slog.New(requestID{h}).With("version", version.Version)
}

// ParseLevel reads DEBUG, INFO, WARN or ERROR (any case); INFO otherwise.
func ParseLevel(s string) slog.Level {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "DEBUG", "TRACE":
		return slog.LevelDebug
	case "WARN", "WARNING":
		return slog.LevelWarn
	case "ERROR", "FATAL":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// requestID adds the Lambda request id from ctx to every record.
type requestID struct{ slog.Handler }

func (h requestID) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		r.AddAttrs(slog.String("requestId", lc.AwsRequestID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestID) WithAttrs(a []slog.Attr) slog.Handler { return requestID{h.Handler.WithAttrs(a)} }
func (h requestID) WithGroup(n string) slog.Handler      { return requestID{h.Handler.WithGroup(n)} }
