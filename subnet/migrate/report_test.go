package migrate_test

import (
	"strings"
	"testing"
	"time"

	"github.com/overlayd/overlayd/subnet/migrate"
)

func TestReportTable(t *testing.T) {
	items := []migrate.Item{
		{Key: "/n/config", Outcome: migrate.Copied},
		{Key: "/n/subnets/10.244.1.0-24", Outcome: migrate.Copied, TTL: 23 * time.Hour},
		{Key: "/n/subnets/10.244.2.0-24", Outcome: migrate.AlreadyPresent, Reservation: true},
		{Key: "/n/subnets/10.244.3.0-24", Outcome: migrate.Conflict, TTL: time.Hour, Detail: "v3 holds PublicIP 192.0.2.9: use --force to overwrite"},
		{Key: "/n/subnets/10.244.4.0-24", Outcome: migrate.Overwritten, TTL: time.Minute, Detail: "v3 holds PublicIP 192.0.2.8"},
		{Key: "/n/subnets/junk", Outcome: migrate.Skipped, Detail: "malformed in v2: bad key"},
	}
	tests := []struct {
		name   string
		dryRun bool
		want   string
	}{
		{"applied", false, `
KEY                       RESULT           TTL                 DETAIL
/n/config                 copied           -
/n/subnets/10.244.1.0-24  copied           23h0m0s
/n/subnets/10.244.2.0-24  already present  none (reservation)
/n/subnets/10.244.3.0-24  conflict         1h0m0s              v3 holds PublicIP 192.0.2.9: use --force to overwrite
/n/subnets/10.244.4.0-24  overwritten      1m0s                v3 holds PublicIP 192.0.2.8
/n/subnets/junk           skipped          -                   malformed in v2: bad key
2 copied, 1 overwritten, 1 already present, 1 conflict, 1 skipped; 1 conflicting v3 key(s) left alone: check them, then use --force to overwrite
`},
		{"dry run", true, `
KEY                       RESULT           TTL                 DETAIL
/n/config                 would copy       -
/n/subnets/10.244.1.0-24  would copy       23h0m0s
/n/subnets/10.244.2.0-24  already present  none (reservation)
/n/subnets/10.244.3.0-24  conflict         1h0m0s              v3 holds PublicIP 192.0.2.9: use --force to overwrite
/n/subnets/10.244.4.0-24  would overwrite  1m0s                v3 holds PublicIP 192.0.2.8
/n/subnets/junk           skipped          -                   malformed in v2: bad key
2 copied, 1 overwritten, 1 already present, 1 conflict, 1 skipped (dry run: nothing was written); 1 conflicting v3 key(s) left alone: check them, then use --force to overwrite
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if err := (migrate.Report{DryRun: tc.dryRun, Items: items}).WriteTable(&b); err != nil {
				t.Fatal(err)
			}
			if got, want := b.String(), strings.TrimPrefix(tc.want, "\n"); got != want {
				t.Errorf("table\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestOutcomeString(t *testing.T) {
	if got := migrate.Outcome(42).String(); got != "Outcome(42)" {
		t.Errorf("unknown outcome prints %q", got)
	}
}
