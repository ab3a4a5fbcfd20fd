package kube

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overlayd/overlayd/subnet"
)

// listPageSize is how many Nodes one list request returns at most.
const listPageSize = 500

// listEntries lists every Node in pages of listPageSize and reduces each
// page to entries (the name and the lease, see nodeEntry) before the next
// is read, so that a list of 10,000 Nodes never holds more than one page
// of whole Node objects: a whole Node (status, images, managed fields) is
// several kilobytes, an entry a few hundred bytes. The reflector's first
// list asks for resourceVersion "0" (any version, served whole from the
// API server's cache, ignoring the limit); that is read as "the latest",
// which the API server serves in pages from one snapshot. A re-list that
// names the last version seen ("not older than") is left as the reflector
// asks it, without a limit: the API server's cache serves it, which is what
// a re-list after a watch failure or an API server restart needs (a
// version with a limit would be read from etcd at exactly that revision,
// which the restarted cache may no longer watch from). Every page of a
// continued list is of the same snapshot, whose version the list returns
// for the watch to start from. onPage, when not nil, sees each page's
// entries as soon as they are read.
func listEntries(ctx context.Context, c Client, opts metav1.ListOptions, ann Annotations, onPage func([]*nodeEntry)) (*nodeEntryList, error) {
	switch opts.ResourceVersion {
	case "0":
		opts.ResourceVersion, opts.ResourceVersionMatch, opts.Limit = "", "", listPageSize
	case "":
		if opts.Limit == 0 || opts.Limit > listPageSize {
			opts.Limit = listPageSize
		}
	}
	out := &nodeEntryList{}
	for page := 0; ; page++ {
		l, err := c.ListNodes(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list nodes (page %d): %w", page, err)
		}
		if page == 0 {
			out.ListMeta = l.ListMeta
			out.Items = make([]*nodeEntry, 0, len(l.Items)+remaining(l.RemainingItemCount))
		}
		first := len(out.Items)
		for i := range l.Items {
			out.Items = append(out.Items, ann.entryOf(&l.Items[i]))
		}
		if onPage != nil {
			onPage(out.Items[first:])
		}
		if l.Continue == "" {
			out.Continue, out.RemainingItemCount = "", nil
			return out, nil
		}
		opts.Continue, opts.ResourceVersion, opts.ResourceVersionMatch = l.Continue, "", ""
	}
}

// remaining is the API server's estimate of the items after a page.
func remaining(n *int64) int {
	if n == nil || *n < 0 {
		return 0
	}
	return int(min(*n, 1<<20))
}

// ListLeases is every managed Node's lease, as the watch reads them
// (Nodes that are not managed, or whose lease is unusable, are left out:
// they are no peers). It lists in pages like the watch. For tools (overlayd
// doctor) that look at the cluster once.
func ListLeases(ctx context.Context, c Client, ann Annotations) ([]subnet.Lease, error) {
	list, err := listEntries(ctx, c, metav1.ListOptions{ResourceVersion: "0"}, ann, nil)
	if err != nil {
		return nil, explainAPIError(err, "kube-apiserver: list nodes")
	}
	out := make([]subnet.Lease, 0, len(list.Items))
	for _, e := range list.Items {
		if e.err == nil {
			out = append(out, e.lease)
		}
	}
	return out, nil
}
