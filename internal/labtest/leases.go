package labtest

import (
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/subnet"
)

// StoredLeases returns the keys and values under the lab's etcd subnets
// directory (the default prefix), as any node would list them.
func StoredLeases(t testing.TB, l *lab.Lab) []*mvccpb.KeyValue {
	t.Helper()
	cli, err := l.EtcdClient()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(Context(t, 10*time.Second), subnet.SubnetsDir(subnet.DefaultPrefix), clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("list the leases in the lab's etcd: %v", err)
	}
	return resp.Kvs
}
