package iptables

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	goipt "github.com/coreos/go-iptables/iptables"
)

// fakeErr carries an exit status like go-iptables' *Error.
type fakeErr struct {
	status int
	msg    string
}

func (e *fakeErr) Error() string    { return fmt.Sprintf("exit status %d: %s", e.status, e.msg) }
func (e *fakeErr) ExitStatus() int  { return e.status }
func (e *fakeErr) IsNotExist() bool { return e.status == 1 }

type fakeChain struct {
	name    string
	builtin bool
	rules   [][]string
}

// fakeRunner behaves like go-iptables against a kernel: chains must exist,
// deleting what is absent fails, jumps need their target chain, and List
// prints iptables -S lines.
type fakeRunner struct {
	proto       goipt.Protocol
	randomFully bool
	tables      map[string][]*fakeChain
	writes      int
	fail        map[string]error // method name -> error it returns
}

func newFakeRunner(proto goipt.Protocol) *fakeRunner {
	f := &fakeRunner{proto: proto, randomFully: true, tables: map[string][]*fakeChain{}, fail: map[string]error{}}
	builtins := map[string][]string{
		"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
		"filter": {"INPUT", "FORWARD", "OUTPUT"},
	}
	for table, chains := range builtins {
		for _, c := range chains {
			f.tables[table] = append(f.tables[table], &fakeChain{name: c, builtin: true})
		}
	}
	return f
}

func (f *fakeRunner) chain(table, name string) *fakeChain {
	for _, c := range f.tables[table] {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (f *fakeRunner) failure(op string) error { return f.fail[op] }

func (f *fakeRunner) notFound(table, chain string) error {
	return &fakeErr{1, fmt.Sprintf("chain %s in table %s: No chain/target/match by that name.", chain, table)}
}

func (f *fakeRunner) Proto() goipt.Protocol { return f.proto }
func (f *fakeRunner) HasRandomFully() bool  { return f.randomFully }

func (f *fakeRunner) ChainExists(table, chain string) (bool, error) {
	if err := f.failure("ChainExists"); err != nil {
		return false, err
	}
	return f.chain(table, chain) != nil, nil
}

func (f *fakeRunner) NewChain(table, chain string) error {
	if err := f.failure("NewChain"); err != nil {
		return err
	}
	if f.chain(table, chain) != nil {
		return &fakeErr{1, "Chain already exists."}
	}
	f.tables[table] = append(f.tables[table], &fakeChain{name: chain})
	f.writes++
	return nil
}

func (f *fakeRunner) ClearChain(table, chain string) error {
	if c := f.chain(table, chain); c != nil {
		c.rules = nil
		f.writes++
		return nil
	}
	return f.NewChain(table, chain)
}

func (f *fakeRunner) DeleteChain(table, chain string) error {
	c := f.chain(table, chain)
	switch {
	case c == nil:
		return f.notFound(table, chain)
	case c.builtin || len(c.rules) > 0:
		return &fakeErr{1, "Directory not empty"}
	case f.referenced(table, chain):
		return &fakeErr{1, "Too many links"}
	}
	f.tables[table] = slices.DeleteFunc(f.tables[table], func(x *fakeChain) bool { return x == c })
	f.writes++
	return nil
}

func (f *fakeRunner) referenced(table, chain string) bool {
	for _, c := range f.tables[table] {
		for _, r := range c.rules {
			if jumpTarget(r) == chain {
				return true
			}
		}
	}
	return false
}

func jumpTarget(spec []string) string {
	if i := slices.Index(spec, "-j"); i >= 0 && i+1 < len(spec) {
		return spec[i+1]
	}
	return ""
}

func (f *fakeRunner) List(table, chain string) ([]string, error) {
	if err := f.failure("List"); err != nil {
		return nil, err
	}
	c := f.chain(table, chain)
	if c == nil {
		return nil, f.notFound(table, chain)
	}
	lines := []string{header(c)}
	for _, r := range c.rules {
		lines = append(lines, fakeLine(c.name, r))
	}
	return lines, nil
}

func header(c *fakeChain) string {
	if c.builtin {
		return "-P " + c.name + " ACCEPT"
	}
	return "-N " + c.name
}

// save prints a table as "iptables -t <table> -S" does.
func (f *fakeRunner) save(table string) string {
	var b strings.Builder
	for _, c := range f.tables[table] {
		b.WriteString(header(c) + "\n")
	}
	for _, c := range f.tables[table] {
		for _, r := range c.rules {
			b.WriteString(fakeLine(c.name, r) + "\n")
		}
	}
	return b.String()
}

// fakeLine is the fake's own rendering of a rule, written independently of
// Rule.String: arguments with blanks or quotes are quoted, as iptables-save does.
func fakeLine(chain string, spec []string) string {
	args := make([]string, len(spec))
	esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `'`, `\'`)
	for i, a := range spec {
		args[i] = a
		if strings.ContainsAny(a, " \"'\\") {
			args[i] = `"` + esc.Replace(a) + `"`
		}
	}
	return strings.TrimSpace("-A " + chain + " " + strings.Join(args, " "))
}

func (f *fakeRunner) find(c *fakeChain, spec []string) int {
	return slices.IndexFunc(c.rules, func(r []string) bool { return slices.Equal(r, spec) })
}

func (f *fakeRunner) Exists(table, chain string, spec ...string) (bool, error) {
	if err := f.failure("Exists"); err != nil {
		return false, err
	}
	c := f.chain(table, chain)
	if c == nil {
		return false, f.notFound(table, chain)
	}
	return f.find(c, spec) >= 0, nil
}

func (f *fakeRunner) checkTarget(table string, spec []string) error {
	t := jumpTarget(spec)
	standard := []string{"", "ACCEPT", "DROP", "RETURN", "MASQUERADE"}
	if !slices.Contains(standard, t) && f.chain(table, t) == nil {
		return &fakeErr{2, "Couldn't load target `" + t + "'"}
	}
	return nil
}

func (f *fakeRunner) Append(table, chain string, spec ...string) error {
	if err := f.failure("Append"); err != nil {
		return err
	}
	return f.insertAt(table, chain, -1, spec)
}

func (f *fakeRunner) Insert(table, chain string, pos int, spec ...string) error {
	if err := f.failure("Insert"); err != nil {
		return err
	}
	return f.insertAt(table, chain, pos, spec)
}

func (f *fakeRunner) insertAt(table, chain string, pos int, spec []string) error {
	c := f.chain(table, chain)
	if c == nil {
		return f.notFound(table, chain)
	}
	if err := f.checkTarget(table, spec); err != nil {
		return err
	}
	if pos == -1 {
		pos = len(c.rules) + 1
	}
	if pos < 1 || pos > len(c.rules)+1 {
		return &fakeErr{1, "Index of insertion too big."}
	}
	c.rules = slices.Insert(c.rules, pos-1, slices.Clone(spec))
	f.writes++
	return nil
}

func (f *fakeRunner) Delete(table, chain string, spec ...string) error {
	if err := f.failure("Delete"); err != nil {
		return err
	}
	c := f.chain(table, chain)
	if c == nil {
		return f.notFound(table, chain)
	}
	i := f.find(c, spec)
	if i < 0 {
		return &fakeErr{1, "Bad rule (does a matching rule exist in that chain?)."}
	}
	c.rules = slices.Delete(c.rules, i, i+1)
	f.writes++
	return nil
}

func (f *fakeRunner) DeleteById(table, chain string, id int) error {
	if err := f.failure("DeleteById"); err != nil {
		return err
	}
	c := f.chain(table, chain)
	if c == nil {
		return f.notFound(table, chain)
	}
	if id < 1 || id > len(c.rules) {
		return &fakeErr{1, "Index of deletion too big."}
	}
	c.rules = slices.Delete(c.rules, id-1, id)
	f.writes++
	return nil
}

// seed loads "-N CHAIN" and "-A CHAIN args" lines (quoted as iptables -S
// prints them) into table, without counting writes.
func (f *fakeRunner) seed(t *testing.T, table, text string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		args := splitRuleLine(t, strings.TrimSpace(line))
		switch {
		case len(args) == 0 || args[0] == "-P":
		case args[0] == "-N" && len(args) == 2:
			if f.chain(table, args[1]) == nil {
				f.tables[table] = append(f.tables[table], &fakeChain{name: args[1]})
			}
		case args[0] == "-A" && len(args) >= 2:
			c := f.chain(table, args[1])
			if c == nil {
				t.Fatalf("seed %q: no chain %s in %s", line, args[1], table)
			}
			c.rules = append(c.rules, args[2:])
		default:
			t.Fatalf("seed: cannot parse %q", line)
		}
	}
}

// splitRuleLine splits an iptables -S line into arguments, honouring double
// quotes and backslash escapes.
func splitRuleLine(t *testing.T, line string) []string {
	t.Helper()
	var args []string
	var cur strings.Builder
	inArg, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && quoted && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == '"':
			quoted, inArg = !quoted, true
		case c == ' ' && !quoted:
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quote in %q", line)
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args
}

type fakeSet struct {
	typ, family string
	maxElem     int
	members     []string
}

// fakeIPSet interprets ipset restore batches like the kernel: commands apply
// one by one until one fails; sets referenced by a rule of ipt cannot be
// destroyed.
type fakeIPSet struct {
	ipt      *fakeRunner
	sets     map[string]*fakeSet
	restores int
	fail     error
}

func newFakeIPSet(ipt *fakeRunner) *fakeIPSet {
	return &fakeIPSet{ipt: ipt, sets: map[string]*fakeSet{}}
}

func (s *fakeIPSet) ListNames() ([]string, error) {
	var names []string
	for n := range s.sets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

func (s *fakeIPSet) Save(set string) (string, error) {
	st, ok := s.sets[set]
	if !ok {
		return "", fmt.Errorf("ipset save %s: The set with the given name does not exist", set)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "create %s %s family %s hashsize 1024 maxelem %d bucketsize 12 initval 0x1234\n", set, st.typ, st.family, st.maxElem)
	for _, m := range st.members {
		fmt.Fprintf(&b, "add %s %s\n", set, m)
	}
	return b.String(), nil
}

func (s *fakeIPSet) Restore(commands string) error {
	if s.fail != nil {
		return s.fail
	}
	s.restores++
	for n, line := range strings.Split(strings.TrimSpace(commands), "\n") {
		if err := s.apply(strings.Fields(line)); err != nil {
			return fmt.Errorf("ipset restore: Error in line %d: %w", n+1, err)
		}
	}
	return nil
}

func (s *fakeIPSet) apply(f []string) error {
	if len(f) < 2 {
		return fmt.Errorf("bad command %q", f)
	}
	name := f[1]
	st, exists := s.sets[name]
	if f[0] != "create" && !exists {
		return fmt.Errorf("set %s does not exist", name)
	}
	switch f[0] {
	case "create":
		if exists {
			return fmt.Errorf("set %s already exists", name)
		}
		st := &fakeSet{typ: f[2], family: f[slices.Index(f, "family")+1], maxElem: 65536}
		if i := slices.Index(f, "maxelem"); i > 0 {
			fmt.Sscan(f[i+1], &st.maxElem)
		}
		s.sets[name] = st
	case "add":
		if slices.Contains(st.members, f[2]) {
			return fmt.Errorf("%s already added to %s", f[2], name)
		}
		st.members = append(st.members, f[2])
	case "del":
		i := slices.Index(st.members, f[2])
		if i < 0 {
			return fmt.Errorf("%s not in %s", f[2], name)
		}
		st.members = slices.Delete(st.members, i, i+1)
	case "swap":
		other, ok := s.sets[f[2]]
		if !ok || other.typ != st.typ || other.family != st.family {
			return fmt.Errorf("sets %s and %s cannot be swapped", name, f[2])
		}
		s.sets[name], s.sets[f[2]] = other, st
	case "destroy":
		if s.ipt != nil && s.referenced(name) {
			return fmt.Errorf("set %s is in use by a kernel component", name)
		}
		delete(s.sets, name)
	default:
		return fmt.Errorf("unknown command %q", f[0])
	}
	return nil
}

func (s *fakeIPSet) referenced(set string) bool {
	for _, chains := range s.ipt.tables {
		for _, c := range chains {
			for _, r := range c.rules {
				if i := slices.Index(r, "--match-set"); i >= 0 && r[i+1] == set {
					return true
				}
			}
		}
	}
	return false
}

// lockedRunner serialises calls to a Runner so a test can change the fake
// while a Manager's Run goroutine uses it.
type lockedRunner struct {
	mu sync.Mutex
	r  Runner
}

func (l *lockedRunner) do(fn func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fn()
}

func (l *lockedRunner) Proto() goipt.Protocol { return l.r.Proto() }
func (l *lockedRunner) HasRandomFully() bool  { return l.r.HasRandomFully() }

func (l *lockedRunner) ChainExists(table, chain string) (ok bool, err error) {
	l.do(func() { ok, err = l.r.ChainExists(table, chain) })
	return
}

func (l *lockedRunner) NewChain(table, chain string) (err error) {
	l.do(func() { err = l.r.NewChain(table, chain) })
	return
}

func (l *lockedRunner) ClearChain(table, chain string) (err error) {
	l.do(func() { err = l.r.ClearChain(table, chain) })
	return
}

func (l *lockedRunner) DeleteChain(table, chain string) (err error) {
	l.do(func() { err = l.r.DeleteChain(table, chain) })
	return
}

func (l *lockedRunner) List(table, chain string) (lines []string, err error) {
	l.do(func() { lines, err = l.r.List(table, chain) })
	return
}

func (l *lockedRunner) Exists(table, chain string, spec ...string) (ok bool, err error) {
	l.do(func() { ok, err = l.r.Exists(table, chain, spec...) })
	return
}

func (l *lockedRunner) Append(table, chain string, spec ...string) (err error) {
	l.do(func() { err = l.r.Append(table, chain, spec...) })
	return
}

func (l *lockedRunner) Insert(table, chain string, pos int, spec ...string) (err error) {
	l.do(func() { err = l.r.Insert(table, chain, pos, spec...) })
	return
}

func (l *lockedRunner) Delete(table, chain string, spec ...string) (err error) {
	l.do(func() { err = l.r.Delete(table, chain, spec...) })
	return
}

func (l *lockedRunner) DeleteById(table, chain string, id int) (err error) {
	l.do(func() { err = l.r.DeleteById(table, chain, id) })
	return
}
