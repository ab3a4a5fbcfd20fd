package benchns

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/overlayd/overlayd/internal/netnsutil"
)

func TestNewMakesFlannelDeviceAndCloseRemovesIt(t *testing.T) {
	netnsutil.RequireRoot(t)
	ns, err := New("bnstest")
	if err != nil {
		t.Fatal(err)
	}
	name := ns.Name
	t.Cleanup(func() { ns.Close() })
	if ns.Device.Name != "flannel.1" || ns.Device.MTU != 1450 || ns.Device.LocalIP != UnderlayIP {
		t.Errorf("device %+v, want flannel.1, MTU 1450, local %s", ns.Device, UnderlayIP)
	}
	c, err := CountEntries(ns.Handle, ns.Device.Index)
	if err != nil || c.Total() != 0 {
		t.Errorf("fresh device has %+v entries (err %v)", c, err)
	}
	if err := WaitQuiet(context.Background(), name); err != nil {
		t.Error(err)
	}
	if err := ns.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil && slices.Contains(strings.Fields(string(out)), name) {
		t.Errorf("namespace %s still listed after Close", name)
	}
}
