package deploy

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dockerfileLines returns the Dockerfile's instructions with continuation
// lines joined and comments dropped.
func dockerfileLines(t *testing.T) []string {
	t.Helper()
	var lines []string
	var cur strings.Builder
	for _, raw := range strings.Split(readFile(t, dockerfilePath), "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		lines = append(lines, strings.Join(strings.Fields(cur.String()), " "))
		cur.Reset()
	}
	return lines
}

// dockerLdflags matches the go build's -ldflags "..." in the Dockerfile.
var dockerLdflags = regexp.MustCompile(`-ldflags "([^"]*)"`)

// imageEntrypoint is deploy/docker/entrypoint.sh inside the image.
const imageEntrypoint = "/usr/local/bin/overlayd-entrypoint"

func TestDockerfile(t *testing.T) {
	lines := dockerfileLines(t)
	var froms []string
	var build, install, entrypoint string
	labels := map[string]bool{}
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "FROM "):
			froms = append(froms, l)
		case strings.HasPrefix(l, "RUN ") && strings.Contains(l, "go build"):
			build = l
		case strings.HasPrefix(l, "RUN ") && strings.Contains(l, "apt-get install"):
			install = l
		case strings.HasPrefix(l, "ENTRYPOINT "):
			entrypoint = l
		case strings.HasPrefix(l, "LABEL "):
			for _, m := range regexp.MustCompile(`(org\.opencontainers\.image\.[a-z.]+)=`).FindAllStringSubmatch(l, -1) {
				labels[m[1]] = true
			}
		}
	}
	if len(froms) != 2 || !strings.Contains(froms[0], "golang:1.26") || !strings.HasSuffix(froms[0], " AS build") ||
		froms[1] != "FROM debian:bookworm-slim" {
		t.Errorf("stages %q: want golang:1.26 AS build, then debian:bookworm-slim", froms)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}"`, "./cmd/overlayd"} {
		if !strings.Contains(build, want) {
			t.Errorf("build step %q lacks %s", build, want)
		}
	}
	for _, pkg := range []string{"iptables", "ipset", "iproute2"} {
		if !regexp.MustCompile(`\b` + pkg + `\b`).MatchString(install) {
			t.Errorf("runtime packages %q lack %s", install, pkg)
		}
	}
	if entrypoint != `ENTRYPOINT ["`+imageEntrypoint+`"]` {
		t.Errorf("entrypoint %q, want %s (picks the iptables backend, runs overlayd) in exec form", entrypoint, imageEntrypoint)
	}
	if !slices.Contains(lines, "COPY deploy/docker/entrypoint.sh "+imageEntrypoint) {
		t.Errorf("the Dockerfile does not install deploy/docker/entrypoint.sh as %s", imageEntrypoint)
	}
	for _, l := range []string{"title", "description", "source", "version"} {
		if !labels["org.opencontainers.image."+l] {
			t.Errorf("no OCI label org.opencontainers.image.%s", l)
		}
	}
	text := readFile(t, dockerfilePath)
	for _, why := range []string{"NET_ADMIN", "NET_RAW", "host"} {
		if !strings.Contains(text, why) {
			t.Errorf("the Dockerfile does not explain why the agent needs %s", why)
		}
	}
}

// TestReleaseBinaryIsStatic builds cmd/overlayd as the Dockerfile does
// (CGO_ENABLED=0, -trimpath, its -ldflags) and checks that the result needs
// no dynamic loader or shared library, so it runs on any base image.
func TestReleaseBinaryIsStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the release build")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not in PATH")
	}
	m := dockerLdflags.FindStringSubmatch(strings.Join(dockerfileLines(t), "\n"))
	if m == nil {
		t.Fatalf("%s: no -ldflags \"...\" in the build step", dockerfilePath)
	}
	const version = "v0.0.0-deploytest"
	const commit = "0123456789abcdef0123"
	ldflags := strings.ReplaceAll(strings.ReplaceAll(m[1], "${VERSION}", version), "${COMMIT}", commit)
	bin := filepath.Join(t.TempDir(), "overlayd")
	build := exec.Command(goTool, "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", bin, "./cmd/overlayd")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	checkStatic(t, bin)
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("%s version: %v", bin, err)
	}
	if !bytes.HasPrefix(out, []byte("overlayd "+version+" (commit "+commit[:12]+",")) {
		t.Errorf("version output %q: -X main.version or -X main.commit did not take", out)
	}
}

func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("open %s as ELF: %v", bin, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a PT_INTERP program header: it is dynamically linked", bin)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatalf("read %s dynamic section: %v", bin, err)
	}
	if len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", bin, libs)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s still has a symbol table: -s did not take", bin)
	}
}
