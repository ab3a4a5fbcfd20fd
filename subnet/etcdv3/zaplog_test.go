package etcdv3

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestSlogCoreForwardsEtcdClientLogs(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level:       slog.LevelInfo,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return dropTime(a) },
	}))
	zl := zap.New(newSlogCore(logger)).With(zap.String("client", "etcd"))
	zl.Debug("hidden", zap.Int("n", 1))
	zl.Warn("retrying of unary invoker failed", zap.String("target", "endpoint"), zap.Int("attempt", 2))
	zl.Error("boom")
	tests := []struct{ want string }{
		{`level=WARN msg="retrying of unary invoker failed" attempt=2 client=etcd target=endpoint`},
		{`level=ERROR msg=boom client=etcd`},
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(tests) {
		t.Fatalf("got %d lines, want %d (debug filtered):\n%s", len(lines), len(tests), buf.String())
	}
	for i, tc := range tests {
		if lines[i] != tc.want {
			t.Errorf("line %d = %q, want %q", i, lines[i], tc.want)
		}
	}
}

func dropTime(a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
