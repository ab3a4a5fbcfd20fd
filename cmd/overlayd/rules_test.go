package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckIPTablesNamesWhatIsMissing: without iptables (or, for the peer
// filter, ipset) in PATH the error names the binary and suggests
// EnableNFTables.
func TestCheckIPTablesNamesWhatIsMissing(t *testing.T) {
	const works = "exit 0"
	const noNAT = "echo \"iptables v1.8.9 (legacy): can't initialize iptables table 'nat': Table does not exist (do you need to insmod?)\" >&2; exit 3"
	fakeBin := func(listing string, names ...string) string {
		dir := t.TempDir()
		for _, n := range names {
			// A stand-in for iptables: go-iptables' version probe works,
			// listing does what the case says.
			script := "#!/bin/sh\ncase \"$*\" in *--version*) echo 'iptables v1.8.9 (nf_tables)'; exit 0;; esac\n" + listing + "\n"
			if err := os.WriteFile(filepath.Join(dir, n), []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	for _, tc := range []struct {
		name      string
		path      string
		needIPSet bool
		want      []string // substrings; none: no error
	}{
		{"no iptables", fakeBin(works), false, []string{"iptables binary is not in PATH", "EnableNFTables"}},
		{"no nat table", fakeBin(noNAT, "iptables"), false, []string{"cannot use the nat table", "kernel module", "insmod", "EnableNFTables"}},
		{"no ipset with the peer filter", fakeBin(works, "iptables"), true, []string{"ipset binary", "--vxlan-peer-filter", "EnableNFTables"}},
		{"no ipset without the peer filter", fakeBin(works, "iptables"), false, nil},
		{"all there", fakeBin(works, "iptables", "ipset"), true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("PATH", tc.path)
			err := checkIPTables(tc.needIPSet)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
