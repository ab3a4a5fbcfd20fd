package vxlanport

import (
	"slices"
	"strings"
	"testing"
)

func TestFiltered(t *testing.T) {
	tests := []struct {
		name    string
		port    int
		extra   []int
		want    []uint16
		wantErr string
	}{
		{name: "default", want: []uint16{Default}},
		{name: "port and extra", port: 4789, extra: []int{8475}, want: []uint16{4789, 8475}},
		{name: "port too large", port: 65536, wantErr: "PeerFilterOptions.Port 65536 is not a UDP port"},
		{name: "negative port", port: -1, wantErr: "PeerFilterOptions.Port -1 is not a UDP port"},
		{name: "extra zero", extra: []int{0}, wantErr: "PeerFilterOptions.ExtraPorts 0 is not a UDP port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Filtered(tt.port, tt.extra)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Filtered(%d, %v) error = %v, want %q", tt.port, tt.extra, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("Filtered(%d, %v) = %v, %v; want %v", tt.port, tt.extra, got, err, tt.want)
			}
		})
	}
}
