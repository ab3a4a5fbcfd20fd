package main

import (
	"io"
	"testing"

	"github.com/overlayd/overlayd/internal/lab"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    demoFlags
		wantErr bool
	}{
		{name: "defaults", want: demoFlags{nodes: 3, pods: 1, topology: lab.Flat}},
		{name: "nat kept", args: []string{"-nodes", "4", "-pods", "2", "-topology", "nat", "-keep"}, want: demoFlags{nodes: 4, pods: 2, topology: lab.NAT, keep: true}},
		{name: "prebuilt binary", args: []string{"-overlayd", "/tmp/overlayd", "-v"}, want: demoFlags{nodes: 3, pods: 1, overlayd: "/tmp/overlayd", verbose: true}},
		{name: "unknown topology", args: []string{"-topology", "mesh"}, wantErr: true},
		{name: "unknown flag", args: []string{"-bogus"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(tt.args, io.Discard)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseFlags(%v) succeeded", tt.args)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseFlags(%v) = %+v, %v; want %+v", tt.args, got, err, tt.want)
			}
		})
	}
}
