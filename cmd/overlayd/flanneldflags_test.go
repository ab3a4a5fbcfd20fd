package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/overlayd/overlayd/internal/lab"
)

// flanneldFlagRow is a row of docs/configuration.md's "Every flanneld v0.28
// flag" table: | `-name` | handling |.
var flanneldFlagRow = regexp.MustCompile("^\\| `-([a-z0-9_-]+)` \\| ([^|]+) \\|$")

// flanneldHelpFlag is a flag line of `flanneld --help` (Go's flag usage).
var flanneldHelpFlag = regexp.MustCompile(`^  -([a-z0-9_-]+)`)

// TestFlanneldFlagTable: every flag of the table is accepted by overlayd's
// flag set (so a flanneld command line never exits 2), and, when the real
// flanneld is at hand, the table lists every flag its --help shows.
func TestFlanneldFlagTable(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	table := map[string]string{}
	for _, line := range strings.Split(string(doc), "\n") {
		if m := flanneldFlagRow.FindStringSubmatch(line); m != nil {
			table[m[1]] = m[2]
		}
	}
	if len(table) < 30 {
		t.Fatalf("docs/configuration.md lists %d flanneld flags, want the whole v0.28 set", len(table))
	}
	var r rawFlags
	fs := newFlagSet(&r)
	for name := range table {
		if fs.Lookup(name) == nil {
			t.Errorf("flanneld's -%s is in the table but overlayd does not accept it", name)
		}
	}
	bin, err := lab.FlanneldBinary()
	if err != nil {
		t.Logf("no flanneld binary (%v): the table is checked against overlayd only", err)
		return
	}
	out, _ := exec.Command(bin, "--help").CombinedOutput() // usage exits 0, older ones 2
	seen := 0
	for _, line := range strings.Split(string(out), "\n") {
		m := flanneldHelpFlag.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		seen++
		if _, ok := table[m[1]]; !ok {
			t.Errorf("flanneld --help lists -%s, docs/configuration.md's table does not", m[1])
		}
	}
	if seen == 0 {
		t.Fatalf("no flag in flanneld --help:\n%s", out)
	}
}
