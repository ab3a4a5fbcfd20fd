package subnet_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/subnettest"
)

func TestWaitForConfig(t *testing.T) {
	e := newEnv(t, cfg16)
	e.reg.SetConfig(nil)
	log := e.logs.Logger()
	var got *subnet.Config
	r := run(t, func(ctx context.Context) error {
		var err error
		got, err = subnet.WaitForConfig(ctx, e.reg, e.clock, log)
		return err
	})
	// Each step: what the registry holds for a few retries.
	steps := []struct {
		config []byte
		fault  error
	}{
		{config: nil},
		{config: []byte(`{"Network":"10.5.0.0/16","SubnetLen":31,"Backend":{"Type":"vxlan"}}`)},
		{fault: errors.New("etcd unavailable")},
		{config: []byte(`{"Network":"10.5.0.0/16","Backend":{"Type":"udp"}}`)},
	}
	for _, s := range steps {
		e.reg.SetConfig(s.config)
		for range 3 {
			if s.fault != nil {
				e.reg.FailNext(subnettest.OpGetConfig, s.fault)
			}
			if !e.clock.WaitForTimers(1, wait) {
				t.Fatalf("no retry timer")
			}
			if d, _ := e.clock.NextDeadline(); d.Sub(e.clock.Now()) != time.Second {
				t.Fatalf("retry in %v, want 1s", d.Sub(e.clock.Now()))
			}
			e.clock.Advance(time.Second)
		}
	}
	e.reg.SetConfig([]byte(cfg16))
	if err := r.wait(); err != nil {
		t.Fatalf("WaitForConfig: %v", err)
	}
	if got == nil || got.Network.String() != "10.5.0.0/16" || got.SubnetLen != 24 {
		t.Fatalf("config %+v", got)
	}
	if n := e.logs.Count("waiting for a valid network config"); n != 4 {
		t.Errorf("%d waiting logs, want one per distinct reason (4):\n%s", n, e.logs)
	}
	e.logs.MustContain(t, "network config is missing", "SubnetLen 31 is too long", "etcd unavailable",
		`Backend.Type \"udp\" is not supported`, "network config is now valid")
}

func TestWaitForConfigCanceled(t *testing.T) {
	e := newEnv(t, cfg16)
	e.reg.SetConfig(nil)
	r := run(t, func(ctx context.Context) error {
		_, err := subnet.WaitForConfig(ctx, e.reg, e.clock, nil)
		return err
	})
	if !e.clock.WaitForTimers(1, wait) {
		t.Fatal("no retry timer")
	}
	if err := r.stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitForConfig after cancel: %v", err)
	}
}

func TestWaitForConfigImmediate(t *testing.T) {
	e := newEnv(t, cfg16)
	cfg, err := subnet.WaitForConfig(context.Background(), e.reg, nil, nil)
	if err != nil || cfg.SubnetLen != 24 {
		t.Fatalf("WaitForConfig = %+v, %v", cfg, err)
	}
}
