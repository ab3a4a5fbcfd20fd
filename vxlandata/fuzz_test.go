package vxlandata

import (
	"encoding/json"
	"testing"
)

// FuzzUnmarshal: a peer's BackendData comes from etcd, written by
// anyone. Decoding never panics; what decodes is a 6-byte unicast MAC and
// re-encodes (both forms) to data that decodes to the same.
func FuzzUnmarshal(f *testing.F) {
	for _, seed := range []string{
		`{"VNI":1,"VtepMAC":"56:b3:03:00:ef:bd"}`,
		`{"VtepMAC":"0e:0a:46:7c:72:f9"}`,
		`{"VNI":1,"VtepMAC":"not-a-mac"}`,
		`{"VNI":1,"VtepMAC":"01:00:5e:00:00:01"}`,
		`null`, `{`, `[]`, `""`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := Unmarshal(json.RawMessage(raw))
		if err != nil {
			return
		}
		if len(d.VtepMAC) != 6 || d.VtepMAC[0]&1 != 0 {
			t.Fatalf("accepted VtepMAC %s", d.VtepMAC)
		}
		for _, withVNI := range []bool{true, false} {
			enc, err := Marshal(d, withVNI)
			if err != nil {
				t.Fatalf("re-encode %+v: %v", d, err)
			}
			back, err := Unmarshal(enc)
			if err != nil || back.VtepMAC.String() != d.VtepMAC.String() || (withVNI && back.VNI != d.VNI) {
				t.Fatalf("round trip %s -> %s: %+v, %v", raw, enc, back, err)
			}
		}
	})
}
