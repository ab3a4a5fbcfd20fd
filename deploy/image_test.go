package deploy

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestImageScriptBuildsTheManifestsImage runs scripts/image.sh --dry-run
// (no container engine here): a multi-arch buildx build of the Dockerfile
// stamping version and commit, tagged with the image reference both
// DaemonSets use.
func TestImageScriptBuildsTheManifestsImage(t *testing.T) {
	script, err := filepath.Abs(filepath.Join(repoRoot, "scripts", "image.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n %s: %v\n%s", script, err, out)
	}
	images := map[string]bool{}
	for _, path := range []string{manifestPath, ksmManifestPath} {
		for _, m := range regexp.MustCompile(`image: (\S+)`).FindAllStringSubmatch(readFile(t, path), -1) {
			images[m[1]] = true
		}
	}
	if len(images) != 1 {
		t.Fatalf("the manifests use images %v, want one (overlayd's own)", images)
	}
	var ref string
	for ref = range images {
	}
	repo, tag, _ := strings.Cut(ref, ":")
	cmd := exec.Command("bash", script, "--dry-run", "--engine", "docker", "--push", "--image", repo, "--version", tag)
	cmd.Dir = repoRoot
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("image.sh --dry-run: %v\n%s", err, out)
	}
	build := strings.SplitN(string(out), "\n", 2)[0]
	for _, want := range []string{"buildx build", "linux/amd64", "linux/arm64", "VERSION=" + tag, "COMMIT=", "-t " + ref, "--push"} {
		if !strings.Contains(strings.ReplaceAll(build, `\,`, ","), want) {
			t.Errorf("build command %q lacks %q", build, want)
		}
	}
}
