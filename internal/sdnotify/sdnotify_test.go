package sdnotify

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNotifySendsReady(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := Notify(path, Ready); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	buf := make([]byte, 64)
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if got := string(buf[:n]); got != Ready {
		t.Fatalf("got %q, want %q", got, Ready)
	}
}

func TestNotifyWithoutSocketIsNoop(t *testing.T) {
	if err := Notify("", Ready); err != nil {
		t.Fatalf("Notify with no socket: %v", err)
	}
}

func TestNotifyMissingSocketNamesPath(t *testing.T) {
	err := Notify("/nonexistent/overlayd.sock", Ready)
	if err == nil {
		t.Fatal("want an error for a missing socket")
	}
	if want := "/nonexistent/overlayd.sock"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name %s", err, want)
	}
}
