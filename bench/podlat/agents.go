package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"
	"unicode"
)

// defaultAgentName selects defaultTemplate when given alone to -agent.
const defaultAgentName = "overlayd"

// defaultTemplate runs the overlayd built from this tree (or -overlayd).
const defaultTemplate = "{{.Bin}} --etcd-endpoints={{.Etcd}} --etcd-prefix={{.Prefix}} --iface={{.Iface}}" +
	" --public-ip={{.PublicIP}} --subnet-file={{.SubnetFile}} --ip-masq"

// flanneldAgentName selects flanneldTemplate when given alone to -agent:
// the real flanneld built by scripts/flanneld.sh (or -flanneld), run with
// the same flags as overlayd's default.
const flanneldAgentName = "flanneld"

const flanneldTemplate = "{{.Flanneld}} --etcd-endpoints={{.Etcd}} --etcd-prefix={{.Prefix}} --iface={{.Iface}}" +
	" --public-ip={{.PublicIP}} --subnet-file={{.SubnetFile}} --ip-masq"

// agentName is what may precede "=" or ":" in an -agent value.
var agentName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// templateData are the fields an agent template may use.
type templateData struct {
	Bin        string // the overlayd binary (built from this tree or -overlayd)
	Flanneld   string // the flanneld binary (scripts/flanneld.sh's, or -flanneld)
	Etcd       string // etcd as the nodes reach it (the lab's proxy)
	Iface      string // the node's underlay interface
	PublicIP   string // the node's underlay address
	SubnetFile string // where the agent must write subnet.env
	Node       string // node0, node1, ...
	Prefix     string // the etcd prefix, /coreos.com/network
}

// agentSpec is one agent to benchmark: a name for the report and the
// command line template run on every node.
type agentSpec struct {
	Name     string
	Template string
	tmpl     *template.Template
}

// parseAgentSpec reads "name=template", "name:template", a bare template
// (named after its program) or "overlayd" alone (the default template).
func parseAgentSpec(s string) (agentSpec, error) {
	s = strings.TrimSpace(s)
	switch s {
	case defaultAgentName:
		return newAgentSpec(defaultAgentName, defaultTemplate)
	case flanneldAgentName:
		return newAgentSpec(flanneldAgentName, flanneldTemplate)
	}
	if i := strings.IndexAny(s, "=:"); i > 0 && agentName.MatchString(s[:i]) {
		return newAgentSpec(s[:i], s[i+1:])
	}
	return newAgentSpec(nameFromTemplate(s), s)
}

func newAgentSpec(name, text string) (agentSpec, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return agentSpec{}, fmt.Errorf("agent %q: empty command template", name)
	}
	tmpl, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return agentSpec{}, fmt.Errorf("agent %q: template %q: %w", name, text, err)
	}
	a := agentSpec{Name: name, Template: text, tmpl: tmpl}
	// Render once with sample values: unknown fields and bad quoting
	// fail here, before any namespace exists.
	if _, err := a.argv(sampleData()); err != nil {
		return agentSpec{}, err
	}
	return a, nil
}

func nameFromTemplate(text string) string {
	fields := strings.Fields(text)
	if len(fields) == 0 {
		return "agent"
	}
	if fields[0] == "{{.Bin}}" {
		return defaultAgentName
	}
	return filepath.Base(fields[0])
}

func sampleData() templateData {
	return templateData{
		Bin: "/bin/overlayd", Flanneld: "/bin/flanneld", Etcd: "http://192.0.2.254:2379", Iface: "ul0", PublicIP: "192.0.2.10",
		SubnetFile: "/run/flannel/subnet.env", Node: "node0", Prefix: "/coreos.com/network",
	}
}

// argv renders the template for one node and splits it into words.
func (a agentSpec) argv(data templateData) ([]string, error) {
	var b strings.Builder
	if err := a.tmpl.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("agent %q: render %q: %w", a.Name, a.Template, err)
	}
	words, err := splitWords(b.String())
	if err != nil {
		return nil, fmt.Errorf("agent %q: command %q: %w", a.Name, b.String(), err)
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("agent %q: command %q has no words", a.Name, b.String())
	}
	return words, nil
}

// usesBin reports whether the template needs the overlayd binary.
func (a agentSpec) usesBin() bool {
	var b strings.Builder
	data := sampleData()
	data.Bin = "\x00bin\x00"
	a.tmpl.Execute(&b, data)
	return strings.Contains(b.String(), data.Bin)
}

// splitWords splits a command line on blanks, honouring single quotes,
// double quotes and backslash escapes as a POSIX shell does (with no
// expansion of any kind).
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, escaped := false, false
	var quote rune
	for _, r := range s {
		switch {
		case escaped && quote == '"' && !strings.ContainsRune("\"\\$`", r):
			cur.WriteRune('\\')
			cur.WriteRune(r)
			escaped = false
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch r {
			case '"':
				quote = 0
			case '\\':
				escaped = true
			default:
				cur.WriteRune(r)
			}
		case r == '\\':
			escaped, inWord = true, true
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case unicode.IsSpace(r):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if escaped {
		return nil, fmt.Errorf("trailing backslash")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
