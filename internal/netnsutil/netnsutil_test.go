package netnsutil

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

func TestNamespaceLifecycleAndDo(t *testing.T) {
	name := NewT(t, "life")
	out := MustExec(t, name, "ip", "-br", "link", "show", "lo")
	if !strings.Contains(out, "UNKNOWN") && !strings.Contains(out, "UP") {
		t.Fatalf("lo not up in %s: %q", name, out)
	}
	var ln net.Listener
	err := Do(name, func() error {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The listener lives in the namespace: ss inside it must show the port.
	port := ln.Addr().(*net.TCPAddr).Port
	ss := MustExec(t, name, "ss", "-ltn")
	if !strings.Contains(ss, ":"+itoa(port)) {
		t.Fatalf("listener port %d not inside %s:\n%s", port, name, ss)
	}
}

func TestUniqueNameIsShortAndDistinct(t *testing.T) {
	a, b := UniqueName("node1"), UniqueName("node1")
	if a == b {
		t.Fatalf("names collide: %s", a)
	}
	if !strings.HasPrefix(a, NamePrefix) {
		t.Fatalf("name %s lacks prefix", a)
	}
}

func itoa(i int) string {
	return strconv.Itoa(i)
}
