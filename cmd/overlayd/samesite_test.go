package main

import (
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/overlayd/overlayd/backend"
	"github.com/overlayd/overlayd/internal/metrictest"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/underlay"
)

func TestSameSitePortFlag(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    uint16
		wantErr string
	}{
		{"default", nil, nil, 8475, ""},
		{"off", []string{"--same-site-port=0"}, nil, 0, ""},
		{"environment", nil, map[string]string{"FLANNELD_SAME_SITE_PORT": "9000"}, 9000, ""},
		{"out of range", []string{"--same-site-port=70000"}, nil, 0, "--same-site-port: 70000 is out of range 0..65535"},
		{"negative", []string{"--same-site-port=-1"}, nil, 0, "--same-site-port: -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseOptions(tt.args, env(tt.env), io.Discard)
			switch {
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr == "" && o.sameSitePort != tt.want:
				t.Fatalf("sameSitePort = %d, want %d", o.sameSitePort, tt.want)
			}
		})
	}
}

func TestSameSiteOffChangesNothing(t *testing.T) {
	var s *sameSite
	if s.candidates() != nil {
		t.Error("candidates of a nil sameSite is not nil: the peer set would send candidates to nobody")
	}
	s.attach(nil) // no verdicts: every peer's destination stays its PublicIP
	if err := s.run(context.Background()); err != nil {
		t.Errorf("run of a nil sameSite: %v", err)
	}
}

// sameSiteDaemon is a daemon as far as setupSameSite looks: bind address
// on root loopback (tests touch nothing else), public address public.
func sameSiteDaemon(port uint16, public string) *daemon {
	bind := netip.MustParsePrefix("127.0.0.1/8")
	return &daemon{
		opts: options{sameSitePort: port}, log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry(),
		choice: underlay.Choice{Addr: bind.Addr(), Prefix: bind},
		device: backend.Device{MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}},
		public: netip.MustParseAddr(public), sameSiteKey: ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)),
	}
}

func TestSetupSameSite(t *testing.T) {
	lease := subnet.Lease{Subnet: netip.MustParsePrefix("10.244.1.0/24")}
	if s := sameSiteDaemon(0, "203.0.113.5").setupSameSite(lease); s != nil {
		t.Error("--same-site-port=0 still set up detection")
	}
	if s := sameSiteDaemon(8475, "127.0.0.1").setupSameSite(lease); s != nil {
		t.Error("detection set up without NAT (advertised address = bind address)")
	}
	keyless := sameSiteDaemon(freeUDPPort(t), "203.0.113.5")
	keyless.sameSiteKey = nil
	if s := keyless.setupSameSite(lease); s != nil {
		t.Error("detection set up without a signing key")
	}
	port := freeUDPPort(t)
	d := sameSiteDaemon(port, "203.0.113.5")
	s := d.setupSameSite(lease)
	if s == nil || s.candidates() == nil {
		t.Fatal("behind NAT with a free port, detection is not set up")
	}
	if !metrictest.Has(t, d.reg, "overlayd_samesite_verified_peers") {
		t.Error("samesite metrics not registered")
	}
	if taken := sameSiteDaemon(port, "203.0.113.5").setupSameSite(lease); taken != nil {
		t.Error("a second detector bound the same port")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.run(ctx); err != nil {
		t.Errorf("run after cancel: %v", err)
	}
}

func freeUDPPort(t *testing.T) uint16 {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}
