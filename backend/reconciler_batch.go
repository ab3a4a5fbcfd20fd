package backend

import "github.com/overlayd/overlayd/backend/internal/nl"

// batchSender is a Kernel that can send many replace requests in one
// datagram (NetlinkKernel). A full pass queues its adds of one table into
// the reconciler's batch and sends it every maxBatch requests and at the
// end of the table, so per peer neighbours still go before FDB entries
// and those before routes.
type batchSender interface {
	sendBatch(b *nl.Batch)
}

// maxBatch bounds a batch: 64 ACKs stay far below the default socket
// receive buffer, and 64 requests fit in a few KiB.
const maxBatch = 64

// startBatching makes the trackers queue their adds when the Kernel can
// send them in batches (full passes only).
func (r *Reconciler) startBatching() {
	if _, ok := r.k.(batchSender); ok {
		r.batch = &r.batchBuf
	}
}

// stopBatching returns to single writes; every tracker has flushed.
func (r *Reconciler) stopBatching() {
	r.batch = nil
}
