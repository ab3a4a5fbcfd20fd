package migrate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/overlayd/overlayd/subnet"
)

// defaultVNI is flannel's VXLAN VNI when the config names none.
const defaultVNI = 1

// configVNI returns Backend.VNI of a config, defaultVNI when absent. It
// reads only what it needs, so configs overlayd would refuse (another
// backend type) still migrate.
func configVNI(config []byte) (int, error) {
	var in struct {
		Backend struct {
			VNI *int
		}
	}
	if err := json.Unmarshal(config, &in); err != nil {
		return 0, fmt.Errorf("config is not valid JSON: %w", err)
	}
	if in.Backend.VNI == nil {
		return defaultVNI, nil
	}
	return *in.Backend.VNI, nil
}

// sameJSON reports whether two JSON documents hold the same value (key
// order and white space ignored).
func sameJSON(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// v3LeaseValue re-encodes a v2 lease in the v0.28 form. A vxlan lease's
// BackendData gains "VNI" (kept if already there).
func v3LeaseValue(attrs subnet.LeaseAttrs, vni int) ([]byte, error) {
	if strings.EqualFold(attrs.BackendType, subnet.BackendVXLAN) {
		data, err := withVNI(attrs.BackendData, vni)
		if err != nil {
			return nil, err
		}
		attrs.BackendData = data
	}
	return subnet.MarshalLeaseAttrs(attrs, subnet.FormV028)
}

// withVNI adds "VNI" to a BackendData object. Keys come out sorted, which
// puts VNI before VtepMAC as flanneld v0.28 writes them.
func withVNI(data json.RawMessage, vni int) (json.RawMessage, error) {
	fields := map[string]json.RawMessage{}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
			return nil, fmt.Errorf("lease field BackendData %s is not a JSON object", data)
		}
	}
	for name := range fields {
		if strings.EqualFold(name, "VNI") {
			return data, nil
		}
	}
	fields["VNI"] = json.RawMessage(strconv.Itoa(vni))
	return json.Marshal(fields)
}

// vtepMAC returns BackendData.VtepMAC, lower-cased ("" when absent).
func vtepMAC(data json.RawMessage) string {
	var in struct{ VtepMAC string }
	if json.Unmarshal(data, &in) != nil {
		return ""
	}
	return strings.ToLower(in.VtepMAC)
}

// leaseMatch compares the lease a v3 key holds with the one to migrate:
// "" when it is the same lease (same PublicIP, backend type and VtepMAC),
// otherwise what differs.
func leaseMatch(existing []byte, want subnet.LeaseAttrs) string {
	got, err := subnet.UnmarshalLeaseAttrs(existing)
	if err != nil {
		return fmt.Sprintf("v3 holds a value that is not a lease (%v)", err)
	}
	gotMAC, wantMAC := vtepMAC(got.BackendData), vtepMAC(want.BackendData)
	if got.PublicIP == want.PublicIP && strings.EqualFold(got.BackendType, want.BackendType) && gotMAC == wantMAC {
		return ""
	}
	return fmt.Sprintf("v3 holds PublicIP %s, BackendType %q, VtepMAC %q; v2 has PublicIP %s, BackendType %q, VtepMAC %q",
		got.PublicIP, got.BackendType, gotMAC, want.PublicIP, want.BackendType, wantMAC)
}
