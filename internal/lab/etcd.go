package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"

	"github.com/overlayd/overlayd/subnet"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ConfigJSON is the lab's flannel network config: Options.Network cut in
// /24s, vxlan backend.
func (l *Lab) ConfigJSON() string {
	return fmt.Sprintf(`{"Network":"%s","SubnetLen":24,"Backend":{"Type":"vxlan"}}`, l.Network)
}

// EtcdClient opens a v3 client on Options.EtcdEndpoint (root loopback,
// plain http). Close it.
func (l *Lab) EtcdClient() (*clientv3.Client, error) {
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{l.opts.EtcdEndpoint},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("etcd client for %s: %w", l.opts.EtcdEndpoint, err)
	}
	return c, nil
}

// WriteConfig puts config at /coreos.com/network/config.
func (l *Lab) WriteConfig(ctx context.Context, config string) error {
	c, err := l.EtcdClient()
	if err != nil {
		return err
	}
	defer c.Close()
	key := subnet.ConfigKey(subnet.DefaultPrefix)
	if _, err := c.Put(ctx, key, config); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// NodeLease reads the lease of n's subnets (n.Subnet, set by
// WaitSubnetFile: IPv4, IPv6 or both, which name the key) from etcd.
func (l *Lab) NodeLease(ctx context.Context, n *Node) (subnet.LeaseAttrs, error) {
	id := subnet.LeaseID{Subnet: n.Subnet.Lease(), IPv6Subnet: n.Subnet.Lease6()}
	if !id.IsValid() {
		return subnet.LeaseAttrs{}, fmt.Errorf("lease of %s: subnet file not read yet (WaitSubnetFile)", n.Name)
	}
	c, err := l.EtcdClient()
	if err != nil {
		return subnet.LeaseAttrs{}, err
	}
	defer c.Close()
	key := subnet.LeaseIDKey(subnet.DefaultPrefix, id)
	resp, err := c.Get(ctx, key)
	if err != nil {
		return subnet.LeaseAttrs{}, fmt.Errorf("get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return subnet.LeaseAttrs{}, fmt.Errorf("lease of %s: %s does not exist", n.Name, key)
	}
	attrs, err := subnet.UnmarshalLeaseAttrs(resp.Kvs[0].Value)
	if err != nil {
		return subnet.LeaseAttrs{}, fmt.Errorf("lease of %s at %s: %w", n.Name, key, err)
	}
	return attrs, nil
}

// VtepMAC extracts the VTEP MAC from a vxlan lease's BackendData. (The
// lab decodes it itself so that it builds whatever state backend is in.)
func VtepMAC(attrs subnet.LeaseAttrs) (string, error) {
	var data struct{ VtepMAC string }
	if err := json.Unmarshal(attrs.BackendData, &data); err != nil {
		return "", fmt.Errorf("BackendData %s: %w", attrs.BackendData, err)
	}
	mac, err := net.ParseMAC(data.VtepMAC)
	if err != nil {
		return "", fmt.Errorf("BackendData.VtepMAC %q: %w", data.VtepMAC, err)
	}
	return mac.String(), nil
}
