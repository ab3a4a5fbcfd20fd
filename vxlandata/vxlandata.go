// Package vxlandata is the codec of a vxlan lease's BackendData: the VTEP
// MAC, and the VNI in the v0.28 form (etcd v3, Kubernetes annotations)
// that the v0.11 form (etcd v2) lacks. See docs/compatibility.md.
//
// Peer leases are written by other machines: Unmarshal accepts only a
// 6-byte unicast MAC, and its errors name the field and the value.
package vxlandata

import (
	"encoding/json"
	"fmt"
	"net"
)

// Data is the BackendData of a vxlan lease:
// {"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"} (v0.11 leases have no VNI).
type Data struct {
	VNI     int
	VtepMAC net.HardwareAddr
}

type vxlanDataV028 struct {
	VNI     int    `json:"VNI"`
	VtepMAC string `json:"VtepMAC"`
}

type vxlanDataV011 struct {
	VtepMAC string `json:"VtepMAC"`
}

// Marshal encodes the BackendData; withVNI selects the v0.28 form
// (v3) over the v0.11 form (v2).
func Marshal(d Data, withVNI bool) (json.RawMessage, error) {
	if len(d.VtepMAC) != 6 {
		return nil, fmt.Errorf("encode BackendData: VtepMAC %q is not a 6-byte MAC", d.VtepMAC)
	}
	if withVNI {
		return json.Marshal(vxlanDataV028{VNI: d.VNI, VtepMAC: d.VtepMAC.String()})
	}
	return json.Marshal(vxlanDataV011{VtepMAC: d.VtepMAC.String()})
}

// Unmarshal decodes a peer's BackendData. The remote VNI is not
// checked (flannel does not either). Errors name the field and value.
func Unmarshal(raw json.RawMessage) (Data, error) {
	if len(raw) == 0 {
		return Data{}, fmt.Errorf("BackendData is missing")
	}
	var in struct {
		VNI     int
		VtepMAC string
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return Data{}, fmt.Errorf("BackendData %s: %w", truncate(raw), err)
	}
	mac, err := net.ParseMAC(in.VtepMAC)
	if err != nil || len(mac) != 6 {
		return Data{}, fmt.Errorf("BackendData.VtepMAC %q is not a 6-byte MAC", in.VtepMAC)
	}
	if mac[0]&1 == 1 {
		return Data{}, fmt.Errorf("BackendData.VtepMAC %q is a multicast MAC", in.VtepMAC)
	}
	return Data{VNI: in.VNI, VtepMAC: mac}, nil
}

func truncate(raw []byte) string {
	const max = 80
	if len(raw) > max {
		return string(raw[:max]) + "..."
	}
	return string(raw)
}
