package netnsutil

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

// TestIn: the socket In returns was made inside the namespace, and an
// unknown namespace is an error naming it.
func TestIn(t *testing.T) {
	name := NewT(t, "in")
	pc, err := In(name, func() (net.PacketConn, error) { return net.ListenPacket("udp", "127.0.0.1:0") })
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	port := pc.LocalAddr().(*net.UDPAddr).Port
	if ss := MustExec(t, name, "ss", "-lun"); !strings.Contains(ss, ":"+strconv.Itoa(port)) {
		t.Fatalf("socket port %d not inside %s:\n%s", port, name, ss)
	}
	missing := name + "-gone"
	if _, err := In(missing, func() (int, error) { return 1, nil }); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("In(%q) error = %v, want one naming the namespace", missing, err)
	}
}
