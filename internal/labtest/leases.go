package labtest

import (
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/subnet"
)

// EtcdClient is a client of the lab's etcd, closed when the test ends.
func EtcdClient(t testing.TB, l *lab.Lab) *clientv3.Client {
	t.Helper()
	cli, err := l.EtcdClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// StoredLeases returns the keys and values under the lab's etcd subnets
// directory (the default prefix), as any node would list them.
func StoredLeases(t testing.TB, l *lab.Lab) []*mvccpb.KeyValue {
	t.Helper()
	resp, err := EtcdClient(t, l).Get(Context(t, 10*time.Second), subnet.SubnetsDir(subnet.DefaultPrefix), clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("list the leases in the lab's etcd: %v", err)
	}
	return resp.Kvs
}
