package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/internal/lab"
	"github.com/overlayd/overlayd/internal/labtest"
	"github.com/overlayd/overlayd/subnet"
)

// store reads and writes the flannel keyspace of one etcd API, so the
// lifecycle tests run unchanged against v3 and v2.
type store interface {
	api() string
	putConfig(ctx context.Context, config string) error
	// lease returns the raw value under the subnet's key ("" if none).
	lease(ctx context.Context, sn netip.Prefix) (string, error)
	deleteLease(ctx context.Context, sn netip.Prefix) error
}

type v3Store struct{ l *lab.Lab }

func (s v3Store) api() string { return "v3" }

func (s v3Store) putConfig(ctx context.Context, config string) error {
	return s.l.WriteConfig(ctx, config)
}

func (s v3Store) lease(ctx context.Context, sn netip.Prefix) (string, error) {
	cli, err := s.l.EtcdClient()
	if err != nil {
		return "", err
	}
	defer cli.Close()
	resp, err := cli.Get(ctx, subnet.LeaseKey(subnet.DefaultPrefix, sn))
	if err != nil || len(resp.Kvs) == 0 {
		return "", err
	}
	return string(resp.Kvs[0].Value), nil
}

func (s v3Store) deleteLease(ctx context.Context, sn netip.Prefix) error {
	cli, err := s.l.EtcdClient()
	if err != nil {
		return err
	}
	defer cli.Close()
	_, err = cli.Delete(ctx, subnet.LeaseKey(subnet.DefaultPrefix, sn))
	return err
}

// v2KeysPath is the v2 API's key space root.
const v2KeysPath = "/" + "v2/keys"

// v2Store speaks etcd's v2 HTTP API directly, as etcdctl v2 does.
type v2Store struct{ endpoint string }

func (s v2Store) api() string { return "v2" }

func (s v2Store) do(ctx context.Context, method, key string, form url.Values) (int, []byte, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, s.endpoint+v2KeysPath+key, body)
	if err != nil {
		return 0, nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, key, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (s v2Store) putConfig(ctx context.Context, config string) error {
	code, b, err := s.do(ctx, http.MethodPut, subnet.ConfigKey(subnet.DefaultPrefix), url.Values{"value": {config}})
	if err == nil && code >= 300 {
		err = fmt.Errorf("v2 put config: %d %s", code, b)
	}
	return err
}

func (s v2Store) lease(ctx context.Context, sn netip.Prefix) (string, error) {
	code, b, err := s.do(ctx, http.MethodGet, subnet.LeaseKey(subnet.DefaultPrefix, sn), nil)
	if err != nil || code == http.StatusNotFound {
		return "", err
	}
	var resp struct{ Node struct{ Value string } }
	if err := json.Unmarshal(b, &resp); err != nil {
		return "", fmt.Errorf("v2 get lease: %w: %s", err, b)
	}
	return resp.Node.Value, nil
}

func (s v2Store) deleteLease(ctx context.Context, sn netip.Prefix) error {
	code, b, err := s.do(ctx, http.MethodDelete, subnet.LeaseKey(subnet.DefaultPrefix, sn), nil)
	if err == nil && code >= 300 {
		err = fmt.Errorf("v2 delete lease: %d %s", code, b)
	}
	return err
}

// forEachAPI runs a lifecycle test against the v3 and the v2 API.
func forEachAPI(t *testing.T, test func(t *testing.T, api string)) {
	for _, api := range []string{"v3", "v2"} {
		t.Run(api, func(t *testing.T) { test(t, api) })
	}
}

func waitLease(t *testing.T, st store, sn netip.Prefix, present bool) {
	t.Helper()
	labtest.Eventually(t, 10*time.Second, fmt.Sprintf("lease %s present=%v", sn, present), func() error {
		v, err := st.lease(labtest.Context(t, 2*time.Second), sn)
		if err != nil {
			return err
		}
		if (v != "") != present {
			return fmt.Errorf("value %q", v)
		}
		return nil
	})
}
