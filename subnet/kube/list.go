package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overlayd/overlayd/subnet"
)

// listPageSize is how many Nodes one list request returns at most.
const listPageSize = 500

// listEntries lists every Node and reduces each to an entry (the name and
// the lease, see nodeEntry) as it is read, so that a list of 10,000 Nodes
// never sits in memory whole: a whole Node (status, images, managed
// fields) is several kilobytes, an entry a few hundred bytes.
//
// The reflector's first list asks for resourceVersion "0": any version,
// which the API server serves whole from its cache, ignoring a limit. A
// client that can stream (nodeStreamer: the real one) reads that answer
// one Node at a time; that is the fastest list there is, as it costs the
// API server no etcd read. Other clients get it as "the latest", in pages
// of listPageSize from one snapshot. A re-list that names the last version
// seen ("not older than") is left as the reflector asks it, without a
// limit: the API server's cache serves it, which is what a re-list after a
// watch failure or an API server restart needs (a version with a limit
// would be read from etcd at exactly that revision, which the restarted
// cache may no longer watch from). The list's version is returned for the
// watch to start from.
//
// onPage, when not nil, sees the entries as they are read, in batches of
// up to listPageSize.
func listEntries(ctx context.Context, c Client, opts metav1.ListOptions, ann Annotations, onPage func([]*nodeEntry)) (*nodeEntryList, error) {
	if s, ok := c.(nodeStreamer); ok && opts.ResourceVersion == "0" {
		return streamEntries(ctx, s, opts, ann, onPage)
	}
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

// streamEntries is listEntries over a streamed list: one request, each
// Node reduced to its entry as it is decoded, handed to onPage in batches.
func streamEntries(ctx context.Context, s nodeStreamer, opts metav1.ListOptions, ann Annotations, onPage func([]*nodeEntry)) (*nodeEntryList, error) {
	opts.Limit, opts.Continue = 0, ""
	out := &nodeEntryList{}
	flushed := 0
	flush := func() {
		if onPage != nil && flushed < len(out.Items) {
			onPage(out.Items[flushed:])
		}
		flushed = len(out.Items)
	}
	meta, err := s.StreamNodes(ctx, opts, func(n *corev1.Node) error {
		out.Items = append(out.Items, ann.entryOf(n))
		if len(out.Items)-flushed >= listPageSize {
			flush()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	flush()
	out.ListMeta = meta
	out.Continue, out.RemainingItemCount = "", nil
	return out, nil
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
