// Package nl is overlayd's own NETLINK_ROUTE socket: full-table dumps read
// without a library object per entry, and many write requests sent in one
// datagram with their answers matched back by sequence number. It knows the
// wire format (nlmsghdr, ndmsg, rtmsg, nhmsg, rtattr) and nothing of the
// reconciler: decoded messages go to callbacks, and which entries are
// overlayd's is decided by the caller (package backend).
package nl

// firstNonNil returns the first error that is not nil.
func firstNonNil(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
