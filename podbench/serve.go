package podbench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/overlayd/overlayd/bench/podlat/rtt"
	"github.com/overlayd/overlayd/bench/podlat/stream"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// DefaultPort is the echo port (TCP and UDP); the stream sink is Port+1.
const DefaultPort = 8478

// server is the echo servers and the sink on one address.
type server struct {
	echoTCP, echoUDP *rtt.EchoServer
	sink             *stream.SinkServer
}

func (s *server) close() {
	for _, e := range []*rtt.EchoServer{s.echoTCP, s.echoUDP} {
		if e != nil {
			e.Close()
		}
	}
	if s.sink != nil {
		s.sink.Close()
	}
}

// listen opens the three sockets on addr:port and addr:port+1 in the
// calling goroutine's namespace.
func listen(addr netip.Addr, port uint16) (*server, error) {
	s := &server{}
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, port).String())
	if err != nil {
		return nil, err
	}
	s.echoTCP = rtt.ServeTCP(ln)
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(addr, port).String())
	if err != nil {
		s.close()
		return nil, err
	}
	s.echoUDP = rtt.ServeUDP(pc)
	sl, err := net.Listen("tcp", netip.AddrPortFrom(addr, port+1).String())
	if err != nil {
		s.close()
		return nil, err
	}
	s.sink = stream.ServeSink(sl)
	return s, nil
}

// Serve runs the servers for clients on other nodes until ctx ends: in a
// bench pod at the server address of subnet (PodAddr), and on the node's
// underlay address (the baseline), then removes the pod.
func Serve(ctx context.Context, subnet netip.Prefix, underlay netip.Addr, port uint16, ready func(pod netip.Addr)) error {
	pod, err := NewPod(subnet, PodAddr(subnet, true))
	if err != nil {
		return err
	}
	onPod, err := netnsutil.In(pod.NS, func() (*server, error) { return listen(pod.IP, port) })
	if err != nil {
		return errors.Join(fmt.Errorf("bench server in the pod at %s: %w", pod.IP, err), pod.Close())
	}
	defer onPod.close()
	defer pod.Close()
	if underlay.IsValid() {
		onNode, err := listen(underlay, port)
		if err != nil {
			return fmt.Errorf("bench server on %s: %w", underlay, err)
		}
		defer onNode.close()
	}
	if ready != nil {
		ready(pod.IP)
	}
	<-ctx.Done()
	return nil
}
