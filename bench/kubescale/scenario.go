package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overlayd/overlayd/bench/internal/benchns"
	"github.com/overlayd/overlayd/bench/internal/benchrun"
	"github.com/overlayd/overlayd/bench/internal/fakepeers"
	"github.com/overlayd/overlayd/bench/internal/kernellimit"
	"github.com/overlayd/overlayd/internal/etcdtest"
	"github.com/overlayd/overlayd/internal/kubeapi"
	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// network is the flannel network: /24 podCIDRs leave room for 65,536
// nodes. The lab node's own podCIDR is its first subnet, which the fake
// peers never use.
var network = netip.MustParsePrefix("10.0.0.0/8")

const (
	subnetLen    = 24
	apiProxyPort = 6443
)

// runResult is everything measured at one N.
type runResult struct {
	N                 int                `json:"n"`
	LoadAverage       float64            `json:"load_average_1m"`
	NodeCreateSeconds float64            `json:"node_create_seconds"`
	Kernel            kernellimit.Result `json:"kernel_limit"`
	Agents            []agentResult      `json:"agents"`
}

// cluster is one N's setup: etcd, the API server, the one-node lab.
type cluster struct {
	cfg        config
	dir        string
	log        *slog.Logger
	lab        *lab.Lab
	node       *lab.Node
	kubeconfig string
	netConf    string
}

func runOne(ctx context.Context, cfg config, n int, log *slog.Logger) (runResult, error) {
	res := runResult{N: n, LoadAverage: benchrun.LoadAverage()}
	dir, err := os.MkdirTemp("", "kubescale-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	etcd, err := etcdtest.Start(ctx, etcdtest.Options{})
	if err != nil {
		return res, fmt.Errorf("start etcd: %w", err)
	}
	defer etcd.Stop()
	api, err := kubeapi.Start(etcd.Endpoint(), dir)
	if err != nil {
		return res, err
	}
	defer api.Stop()
	l, err := lab.New(ctx, lab.Options{Nodes: 1, Topology: lab.Flat, Network: network,
		EtcdEndpoint: etcd.Endpoint(), WorkDir: filepath.Join(dir, "lab"), Logger: log})
	if err != nil {
		return res, err
	}
	defer l.Close()
	c := &cluster{cfg: cfg, dir: dir, log: log, lab: l, node: l.Nodes[0]}
	proxy, err := c.connect(api)
	if err != nil {
		return res, err
	}
	defer proxy.Close()
	peers, err := c.createNodes(ctx, api, n, &res)
	if err != nil {
		return res, err
	}
	if err := c.writeLeases(ctx, peers); err != nil {
		return res, err
	}
	log.Info("kernel limit (iproute2 batches)", "n", n)
	if res.Kernel, err = kernellimit.Measure(ctx, peers, dir); err != nil {
		return res, err
	}
	for _, a := range c.agents() {
		if err := benchns.WaitQuiet(ctx, c.node.NS); err != nil {
			return res, err
		}
		log.Info("agent", "n", n, "agent", a.name)
		r, err := c.measure(ctx, a, n)
		if err != nil {
			return res, fmt.Errorf("%s: %w", a.name, err)
		}
		res.Agents = append(res.Agents, r)
		if a.name == "flanneld" && r.Converged {
			break // the raised queue is only tried when the default hangs
		}
	}
	return res, nil
}

// connect opens the API server to the lab node through a proxy in the hub
// and writes the kubeconfig and the network config.
func (c *cluster) connect(api *kubeapi.Server) (*lab.TCPProxy, error) {
	proxy, err := c.lab.Proxy(apiProxyPort, "127.0.0.1:"+strconv.Itoa(api.Port))
	if err != nil {
		return nil, err
	}
	if c.kubeconfig, err = kubeapi.WriteKubeconfig(c.dir, proxy.URL("https"), api.AdminToken); err != nil {
		proxy.Close()
		return nil, err
	}
	c.netConf = filepath.Join(c.dir, "net-conf.json")
	conf := fmt.Sprintf(`{"Network":"%s","SubnetLen":%d,"Backend":{"Type":"vxlan"}}`, network, subnetLen)
	if err := os.WriteFile(c.netConf, []byte(conf), 0o644); err != nil {
		proxy.Close()
		return nil, err
	}
	return proxy, nil
}

// createNodes registers the lab node and n peers.
func (c *cluster) createNodes(ctx context.Context, api *kubeapi.Server, n int, res *runResult) ([]fakepeers.Peer, error) {
	cs, err := api.AdminClient()
	if err != nil {
		return nil, err
	}
	own := netip.PrefixFrom(network.Addr(), subnetLen).String()
	self := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: c.node.Name}, Spec: corev1.NodeSpec{PodCIDR: own, PodCIDRs: []string{own}}}
	if _, err := cs.CoreV1().Nodes().Create(ctx, self, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create node %s: %w", c.node.Name, err)
	}
	gen, err := fakepeers.NewGenerator(network, subnetLen)
	if err != nil {
		return nil, err
	}
	peers, err := gen.Take(n)
	if err != nil {
		return nil, err
	}
	c.log.Info("creating nodes", "n", n, "status", c.cfg.nodeStatus)
	start := time.Now()
	if err := createNodes(ctx, cs, peers, c.cfg.nodeStatus); err != nil {
		return nil, err
	}
	res.NodeCreateSeconds = time.Since(start).Seconds()
	return peers, nil
}

// resetNode removes what the previous agent programmed: the device (and
// with it every entry on it) and the subnet file.
func (c *cluster) resetNode(ctx context.Context) error {
	if _, err := netnsutil.Exec(ctx, c.node.NS, "ip", "link", "del", lab.FlannelDevice); err != nil && !errors.Is(err, context.Canceled) {
		c.log.Debug("no device to remove", "err", err)
	}
	if err := os.Remove(c.node.SubnetFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
