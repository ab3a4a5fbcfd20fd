package subnettest

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/overlayd/overlayd/subnet"
)

// Sink is a recording subnet.PeerSink: it applies what it receives to a
// peer map and keeps every call.
type Sink struct {
	mu       sync.Mutex
	peers    map[subnet.LeaseID]subnet.Lease
	replaces int
	updates  [][]subnet.Event
	changed  chan struct{}
}

// NewSink returns an empty sink.
func NewSink() *Sink { return &Sink{changed: make(chan struct{})} }

// ReplacePeers implements subnet.PeerSink.
func (s *Sink) ReplacePeers(leases []subnet.Lease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peers = make(map[subnet.LeaseID]subnet.Lease, len(leases))
	for _, l := range leases {
		s.peers[l.ID()] = l
	}
	s.replaces++
	s.notifyLocked()
}

// UpdatePeers implements subnet.PeerSink.
func (s *Sink) UpdatePeers(events []subnet.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peers == nil {
		s.peers = map[subnet.LeaseID]subnet.Lease{}
	}
	for _, e := range events {
		if e.Type == subnet.EventRemoved {
			delete(s.peers, e.Lease.ID())
		} else {
			s.peers[e.Lease.ID()] = e.Lease
		}
	}
	s.updates = append(s.updates, slices.Clone(events))
	s.notifyLocked()
}

func (s *Sink) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Peers returns the current peer set (nil before the first call).
func (s *Sink) Peers() map[subnet.LeaseID]subnet.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.peers)
}

// Replaces returns how many times ReplacePeers was called.
func (s *Sink) Replaces() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replaces
}

// Updates returns every UpdatePeers call's events.
func (s *Sink) Updates() [][]subnet.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.updates)
}

// Events returns every event received through UpdatePeers, in order.
func (s *Sink) Events() []subnet.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var all []subnet.Event
	for _, u := range s.updates {
		all = append(all, u...)
	}
	return all
}

// WaitFor blocks until cond (called without the sink's lock held, so it
// may use the accessors) is true, or timeout (real time) passes.
func (s *Sink) WaitFor(timeout time.Duration, cond func(*Sink) bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		if cond(s) {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return cond(s)
		}
	}
}
