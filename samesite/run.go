package samesite

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

// maxReadErrors bounds consecutive socket read errors before the read
// loop gives up (verified peers then fall back as their probes go
// unanswered).
const maxReadErrors = 100

// Run answers probes and probes candidates until ctx ends, then closes
// the Conn and returns nil.
func (d *Detector) Run(ctx context.Context) error {
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		d.readLoop()
	}()
	defer func() {
		d.o.Conn.Close()
		<-readDone
	}()
	d.log.Info("same-site detection on", "bind", d.o.Local.Addr(), "port", d.o.Port, "underlay", d.o.Local.Masked())
	for {
		d.mu.Lock()
		now := d.o.Clock.Now()
		next := d.probeDue(now)
		d.mu.Unlock()
		var timer subnet.Timer
		var fire <-chan time.Time
		if !next.IsZero() {
			timer = d.o.Clock.NewTimer(next.Sub(now))
			fire = timer.C()
		}
		select {
		case <-ctx.Done():
		case <-fire:
		case <-d.kick:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// readLoop handles datagrams until the Conn is closed.
func (d *Detector) readLoop() {
	buf := make([]byte, 2*messageLen)
	failures := 0
	for {
		n, from, err := d.o.Conn.ReadFrom(buf)
		switch {
		case errors.Is(err, net.ErrClosed):
			return
		case err != nil:
			failures++
			if failures >= maxReadErrors {
				d.log.Error("same-site socket keeps failing; probes are no longer answered", "err", err)
				return
			}
			continue
		}
		failures = 0
		d.handlePacket(from, buf[:n])
	}
}
