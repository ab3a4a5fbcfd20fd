package labtest

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/doctor"
	"github.com/overlayd/overlayd/internal/netnsutil"
)

// RunDoctor runs argv (an `overlayd doctor --json ...` command line)
// inside namespace ns and returns its report and exit code; a run that
// prints no report fails the test.
func RunDoctor(t testing.TB, ns string, argv []string) (doctor.Report, int) {
	t.Helper()
	ctx := Context(t, 90*time.Second)
	cmd := netnsutil.Command(ctx, ns, argv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("doctor in %s: %v\n%s", ns, err, stderr.String())
	}
	var rep doctor.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("doctor in %s: exit %d, output is not a report: %v\n%s\n%s", ns, code, err, out, stderr.String())
	}
	return rep, code
}
