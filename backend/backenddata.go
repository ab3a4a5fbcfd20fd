package backend

import (
	"encoding/json"
	"fmt"
	"net"
)

// VXLANData is the BackendData of a vxlan lease:
// {"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"} (v0.11 leases have no VNI).
type VXLANData struct {
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

// MarshalVXLANData encodes the BackendData; withVNI selects the v0.28 form
// (v3) over the v0.11 form (v2).
func MarshalVXLANData(d VXLANData, withVNI bool) (json.RawMessage, error) {
	if len(d.VtepMAC) != 6 {
		return nil, fmt.Errorf("encode BackendData: VtepMAC %q is not a 6-byte MAC", d.VtepMAC)
	}
	if withVNI {
		return json.Marshal(vxlanDataV028{VNI: d.VNI, VtepMAC: d.VtepMAC.String()})
	}
	return json.Marshal(vxlanDataV011{VtepMAC: d.VtepMAC.String()})
}

// UnmarshalVXLANData decodes a peer's BackendData. The remote VNI is not
// checked (flannel does not either). Errors name the field and value.
func UnmarshalVXLANData(raw json.RawMessage) (VXLANData, error) {
	if len(raw) == 0 {
		return VXLANData{}, fmt.Errorf("BackendData is missing")
	}
	var in struct {
		VNI     int
		VtepMAC string
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return VXLANData{}, fmt.Errorf("BackendData %s: %w", truncate(raw), err)
	}
	mac, err := net.ParseMAC(in.VtepMAC)
	if err != nil || len(mac) != 6 {
		return VXLANData{}, fmt.Errorf("BackendData.VtepMAC %q is not a 6-byte MAC", in.VtepMAC)
	}
	if mac[0]&1 == 1 {
		return VXLANData{}, fmt.Errorf("BackendData.VtepMAC %q is a multicast MAC", in.VtepMAC)
	}
	return VXLANData{VNI: in.VNI, VtepMAC: mac}, nil
}

func truncate(raw []byte) string {
	const max = 80
	if len(raw) > max {
		return string(raw[:max]) + "..."
	}
	return string(raw)
}
