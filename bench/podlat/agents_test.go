package main

import (
	"slices"
	"strings"
	"testing"
)

func TestParseAgentSpec(t *testing.T) {
	tests := []struct {
		name     string
		spec     string
		wantName string
		wantTmpl string
		wantErr  string
	}{
		{name: "default by name", spec: "overlayd", wantName: "overlayd", wantTmpl: defaultTemplate},
		{name: "name equals", spec: "fl=/opt/flanneld --iface={{.Iface}}", wantName: "fl", wantTmpl: "/opt/flanneld --iface={{.Iface}}"},
		{name: "name colon", spec: "overlayd-old:{{.Bin}} --etcd-endpoints={{.Etcd}}", wantName: "overlayd-old", wantTmpl: "{{.Bin}} --etcd-endpoints={{.Etcd}}"},
		{name: "bare path named after program", spec: "/usr/local/bin/flanneld --subnet-file={{.SubnetFile}}", wantName: "flanneld", wantTmpl: "/usr/local/bin/flanneld --subnet-file={{.SubnetFile}}"},
		{name: "bare Bin is overlayd", spec: "{{.Bin}} --ip-masq", wantName: "overlayd", wantTmpl: "{{.Bin}} --ip-masq"},
		{name: "unknown field", spec: "x={{.Bogus}}", wantErr: "Bogus"},
		{name: "bad template", spec: "x={{.Bin", wantErr: "template"},
		{name: "empty template", spec: "x=", wantErr: "empty command template"},
		{name: "unterminated quote", spec: "x={{.Bin}} 'oops", wantErr: "unterminated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := parseAgentSpec(tt.spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseAgentSpec(%q) error = %v, want one mentioning %q", tt.spec, err, tt.wantErr)
				}
				return
			}
			if err != nil || a.Name != tt.wantName || a.Template != tt.wantTmpl {
				t.Fatalf("parseAgentSpec(%q) = %q, %q, %v; want %q, %q", tt.spec, a.Name, a.Template, err, tt.wantName, tt.wantTmpl)
			}
		})
	}
}

func TestAgentArgv(t *testing.T) {
	data := templateData{
		Bin: "/tmp/x/overlayd", Etcd: "http://192.0.2.254:2379", Iface: "ul0", PublicIP: "192.0.2.11",
		SubnetFile: "/w/node1/subnet.env", Node: "node1", Prefix: "/coreos.com/network",
	}
	tests := []struct {
		spec string
		want []string
	}{
		{"overlayd", []string{"/tmp/x/overlayd", "--etcd-endpoints=http://192.0.2.254:2379", "--etcd-prefix=/coreos.com/network",
			"--iface=ul0", "--public-ip=192.0.2.11", "--subnet-file=/w/node1/subnet.env", "--ip-masq"}},
		{`f=flanneld --iface={{.Iface}} --healthz-ip="{{.PublicIP}}" '--name={{.Node}} x'`,
			[]string{"flanneld", "--iface=ul0", "--healthz-ip=192.0.2.11", "--name=node1 x"}},
	}
	for _, tt := range tests {
		a, err := parseAgentSpec(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.argv(data)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("argv(%q) = %q, %v; want %q", tt.spec, got, err, tt.want)
		}
	}
}

func TestUsesBin(t *testing.T) {
	tests := []struct {
		spec string
		want bool
	}{
		{"overlayd", true},
		{"f=/opt/flanneld --iface={{.Iface}}", false},
		{"o={{if .Bin}}{{.Bin}}{{end}} -v", true},
	}
	for _, tt := range tests {
		a, err := parseAgentSpec(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.usesBin(); got != tt.want {
			t.Errorf("usesBin(%q) = %t, want %t", tt.spec, got, tt.want)
		}
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "  a  b\tc\n", want: []string{"a", "b", "c"}},
		{in: `a 'b c' "d e"`, want: []string{"a", "b c", "d e"}},
		{in: `x'y'"z"`, want: []string{"xyz"}},
		{in: `a\ b \'c`, want: []string{"a b", "'c"}},
		{in: `"a\"b \n"`, want: []string{`a"b \n`}},
		{in: `''`, want: []string{""}},
		{in: "", want: nil},
		{in: `"open`, wantErr: true},
		{in: `end\`, wantErr: true},
	}
	for _, tt := range tests {
		got, err := splitWords(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q (error %t)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
