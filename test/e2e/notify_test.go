package e2e

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
)

// TestReadyIsNotifiedToSystemd: with NOTIFY_SOCKET set (Type=notify), the
// daemon sends READY=1 once the subnet file is written and the peer sync
// has started — never before the file exists.
func TestReadyIsNotifiedToSystemd(t *testing.T) {
	l := labtest.NewLab(t, lab.Options{Nodes: 1, CNIPlugin: overlaydBin}, testConfig)
	ctx := labtest.Context(t, 30*time.Second)
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n := l.Nodes[0]
	argv := append([]string{"env", "NOTIFY_SOCKET=" + sock}, lab.OverlaydArgs(overlaydBin, l, n)...)
	if _, err := l.StartAgent(ctx, n, argv); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 256)
	k, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no sd_notify message: %v", err)
	}
	if got := string(buf[:k]); !strings.Contains(got, "READY=1") {
		t.Fatalf("sd_notify sent %q, want READY=1", got)
	}
	if _, err := lab.ReadSubnetEnv(n.SubnetFile); err != nil {
		t.Fatalf("READY=1 arrived before the subnet file: %v", err)
	}
}
