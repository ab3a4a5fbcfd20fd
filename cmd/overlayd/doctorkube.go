package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/overlayd/overlayd/doctor"
	"github.com/overlayd/overlayd/subnet"
	"github.com/overlayd/overlayd/subnet/kube"
)

// doctorKubeFlags are the daemon's kube-mode flags doctor needs to read
// the Kubernetes API as the daemon does.
type doctorKubeFlags struct {
	apiURL, kubeconfig, annotationPrefix, netConfPath string
}

func addDoctorKubeFlags(fs *flag.FlagSet, k *doctorKubeFlags) {
	fs.StringVar(&k.apiURL, "kube-api-url", "", "the daemon's --kube-api-url (with --kube-subnet-mgr)")
	fs.StringVar(&k.kubeconfig, "kubeconfig-file", "", "the daemon's --kubeconfig-file (with --kube-subnet-mgr; default: the pod's service account)")
	fs.StringVar(&k.annotationPrefix, "kube-annotation-prefix", kube.DefaultAnnotationPrefix, "the daemon's --kube-annotation-prefix")
	fs.StringVar(&k.netConfPath, "net-config-path", "/etc/kube-flannel/net-conf.json", "the daemon's --net-config-path")
}

// openKubeStore reads the Kubernetes API as the datastore: the network
// config from --net-config-path, the leases from the Nodes' annotations. A
// failure is a finding (StoreErr), not an error.
func (d doctorFlags) openKubeStore(e *doctor.Env) {
	k := d.kubeFlags
	ann, err := kube.NewAnnotations(k.annotationPrefix)
	if err != nil {
		e.StoreErr = fmt.Errorf("--kube-annotation-prefix: %w", err)
		return
	}
	client, host, err := kube.NewClient(kube.ClientOptions{APIURL: k.apiURL, Kubeconfig: k.kubeconfig, UserAgent: "overlayd-doctor/" + version})
	if err != nil {
		e.StoreErr = fmt.Errorf("kube-apiserver: %w", err)
		return
	}
	e.Store = kubeStore{client: client, ann: ann, netConf: k.netConfPath, host: host, timeout: 2 * d.timeout}
}

// kubeStore is doctor.Datastore over the Kubernetes API.
type kubeStore struct {
	client  kube.Client
	ann     kube.Annotations
	netConf string
	host    string
	timeout time.Duration
}

func (s kubeStore) GetNetworkConfig(context.Context) ([]byte, error) {
	data, err := os.ReadFile(s.netConf)
	if err != nil {
		return nil, fmt.Errorf("--net-config-path: %w", err)
	}
	return data, nil
}

func (s kubeStore) ListLeases(ctx context.Context) (subnet.LeaseList, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	leases, err := kube.ListLeases(ctx, s.client, s.ann)
	if err != nil {
		return subnet.LeaseList{}, fmt.Errorf("%s: %w", s.host, err)
	}
	return subnet.LeaseList{Leases: leases}, nil
}
