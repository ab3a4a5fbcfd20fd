// Package health is overlayd's live peer health: a small UDP echo
// responder on the node's bind address (the underlay probe's target), and
// a prober that checks a bounded, rotating sample of peers every interval
// twice, over the overlay (from this node's flannel.<VNI> address to the
// peer's, so it takes the VXLAN path pods use) and over the underlay (to
// the peer's advertised address on the responder's port). The answers
// carry no secrets and are never larger than the request, so the
// responder cannot be used to amplify traffic; it is rate limited.
package health
