// Package logtest captures log/slog output in unit tests: a buffer that
// several goroutines may write, and the queries tests make of it; and
// reads the tail of a log file a process under test writes.
package logtest

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
)

// Buffer is a goroutine-safe log sink. The zero value is ready to use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logger returns a text logger at debug level writing to b.
func (b *Buffer) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Count counts the occurrences of substr.
func (b *Buffer) Count(substr string) int { return strings.Count(b.String(), substr) }

// Lines returns the lines logged at level (slog's name: DEBUG, INFO,
// WARN, ERROR) that contain substr.
func (b *Buffer) Lines(level, substr string) []string {
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, "level="+level) && strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// MustContain reports a test error for each of substrs the log lacks.
func (b *Buffer) MustContain(t testing.TB, substrs ...string) {
	t.Helper()
	s := b.String()
	for _, sub := range substrs {
		if !strings.Contains(s, sub) {
			t.Errorf("logs lack %q:\n%s", sub, s)
		}
	}
}

// FileTail is the last lines of the log file at path, or why it cannot be
// read: for a test's failure message.
func FileTail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
