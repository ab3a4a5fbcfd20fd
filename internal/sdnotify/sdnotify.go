// Package sdnotify implements the systemd readiness protocol (sd_notify)
// without libsystemd: one datagram to the socket named by $NOTIFY_SOCKET.
package sdnotify

import (
	"fmt"
	"net"
	"strings"
)

// Ready is the message that tells systemd a Type=notify unit is up.
const Ready = "READY=1"

// Notify sends state to socketPath (the value of $NOTIFY_SOCKET). An empty
// path means "not started by systemd" and is not an error. A leading '@'
// names an abstract socket.
func Notify(socketPath, state string) error {
	if socketPath == "" {
		return nil
	}
	addr := &net.UnixAddr{Name: socketPath, Net: "unixgram"}
	if strings.HasPrefix(socketPath, "@") {
		addr.Name = "\x00" + socketPath[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("sd_notify: dial NOTIFY_SOCKET %q: %w", socketPath, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: send %q to %q: %w", state, socketPath, err)
	}
	return nil
}
