// Package samesite finds peers that share this node's private network, so
// that VXLAN traffic to them can go to their private address instead of
// taking the hairpin through a 1:1 NAT.
//
// Behind a cloud's 1:1 NAT every node advertises its public address
// (PublicIP) and overlayd adds the address its VXLAN device binds
// (OverlaydPrivateIP) to the lease. Two nodes of one VPC could send to
// each other's private address directly, but sharing a subnet proves
// nothing: separate VPCs routinely use the same private CIDR and even the
// same addresses, and sending to a private address that belongs to a
// host in our own VPC would deliver the peer's packets to the wrong
// machine. So a peer is only treated as same-site after it has proven it:
//
//   - Every node runs a small UDP responder on its bind address (port
//     --same-site-port, 8475 by default). It answers a probe with the
//     probe's nonce, its own lease subnet and its VTEP MAC. It answers only
//     probes coming from inside its own underlay subnet, and an answer is
//     exactly as long as a probe, so it cannot be used to amplify traffic.
//   - The prober looks at every peer lease. A peer is a candidate when its
//     OverlaydPrivateIP lies inside our underlay prefix and differs from
//     our own bind address. Each candidate is probed at private:port with a
//     fresh random nonce. Only an answer that comes from exactly that
//     private address and port, carries the nonce of the latest probe and
//     names the subnet and VTEP MAC of the peer's lease verifies the peer.
//     A different host answering at that address (another VPC's node with
//     the same private address seen from ours) names another subnet or
//     MAC and is rejected.
//   - Verified peers are re-probed every Options.Interval (30 s) and when
//     their lease changes. After Options.MaxMissed (3) probes in a row go
//     unanswered, each given Options.Timeout (1 s), the peer falls back to
//     its public address. Unverified candidates are re-probed with
//     exponential backoff from Timeout up to Interval.
//
// The Detector is told the candidates (ReplaceCandidates, UpdateCandidates:
// subnet, OverlaydPrivateIP, VTEP MAC) by the owner of the peer set, and
// reports every verdict change to Options.Verdicts, which only queues it;
// the owner then re-derives the peer's underlay destination. The Detector
// never sees a lease and is never asked for a destination.
package samesite
