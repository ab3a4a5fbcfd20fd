package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/overlayd/overlayd/subnet/etcdv2"
	"github.com/overlayd/overlayd/subnet/etcdv3"
	"github.com/overlayd/overlayd/subnet/migrate"
)

// Exit codes of migrate-etcd.
const (
	migrateExitOK        = 0
	migrateExitFailed    = 1 // etcd unreachable, read or write failed
	migrateExitUsage     = 2
	migrateExitConflicts = 3 // done, but conflicting v3 keys were left alone
)

// migrateOptions are migrate-etcd's settings after flags, FLANNELD_ETCD_*
// environment and validation.
type migrateOptions struct {
	endpoints                                     []string
	v2Prefix, v3Prefix                            string
	caFile, certFile, keyFile, username, password string
	dryRun, force                                 bool
	timeout                                       time.Duration
}

const migrateUsage = `Usage: overlayd migrate-etcd [flags]

Copies the flannel network config and subnet leases from the etcd v2
keyspace to the etcd v3 keyspace, in the v3 JSON form, each lease with its
remaining TTL as an etcd lease (reservations without one). Keys already
migrated are left alone, so running it again is harmless. A v3 key holding
something else is reported as a conflict and left alone unless --force.
Restart the nodes with the v3 API afterwards: each keeps its subnet.

The etcd flags also read FLANNELD_ETCD_* like the daemon's.
Exit status: 0 done, 1 failed, 2 usage error, 3 conflicts left alone.

Flags:
`

func migrateMain(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return runMigrate(ctx, args, os.Getenv, os.Stdout, os.Stderr)
}

// runMigrate is migrateMain with its environment passed in.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	o, err := parseMigrateOptions(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return migrateExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "overlayd migrate-etcd: %v\n", err)
		return migrateExitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	report, err := migrateEtcd(ctx, o, log)
	if err == nil || len(report.Items) > 0 {
		if werr := report.WriteTable(stdout); werr != nil && err == nil {
			err = werr
		}
	}
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "overlayd migrate-etcd: %v\n", err)
		return migrateExitFailed
	case report.Count(migrate.Conflict) > 0:
		return migrateExitConflicts
	}
	return migrateExitOK
}

// etcdOptions are the connection options of either API under prefix.
func (o migrateOptions) etcdOptions(prefix string, log *slog.Logger) etcdv3.Options {
	return etcdv3.Options{
		Endpoints: o.endpoints, Prefix: prefix,
		CAFile: o.caFile, CertFile: o.certFile, KeyFile: o.keyFile,
		Username: o.username, Password: o.password, Logger: log,
	}
}

func migrateEtcd(ctx context.Context, o migrateOptions, log *slog.Logger) (migrate.Report, error) {
	source, err := etcdv2.New(ctx, o.etcdOptions(o.v2Prefix, log))
	if err != nil {
		return migrate.Report{}, err
	}
	defer source.Close()
	dest, err := etcdv3.New(ctx, o.etcdOptions(o.v3Prefix, log))
	if err != nil {
		return migrate.Report{}, err
	}
	defer dest.Close()
	return migrate.Migrate(ctx, source, migrate.NewEtcdV3(dest.Client()), migrate.Options{
		Prefix: o.v3Prefix, DryRun: o.dryRun, Force: o.force, Logger: log,
	})
}

// migrateFlags holds the strings as given, before validation.
type migrateFlags struct {
	etcd          etcdFlags // etcd.prefix is the v2 prefix
	v3Prefix      string
	dryRun, force bool
	timeout       time.Duration
}

func newMigrateFlagSet(r *migrateFlags, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("overlayd migrate-etcd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, migrateUsage)
		fs.PrintDefaults()
	}
	addEtcdFlags(fs, &r.etcd, "flannel prefix in the v2 keyspace (and in v3 unless --v3-prefix)")
	fs.StringVar(&r.v3Prefix, "v3-prefix", "", "flannel prefix in the v3 keyspace (default: --etcd-prefix)")
	fs.BoolVar(&r.dryRun, "dry-run", false, "report what would be done; write nothing")
	fs.BoolVar(&r.force, "force", false, "overwrite v3 keys that hold a different value")
	fs.DurationVar(&r.timeout, "timeout", 2*time.Minute, "give up after this long")
	return fs
}

// parseMigrateOptions parses args, fills the etcd flags not given from
// FLANNELD_ETCD_* (never --dry-run or --force: those must be explicit),
// then validates.
func parseMigrateOptions(args []string, getenv func(string) string, stderr io.Writer) (migrateOptions, error) {
	var r migrateFlags
	fs := newMigrateFlagSet(&r, stderr)
	if err := fs.Parse(args); err != nil {
		return migrateOptions{}, err
	}
	if fs.NArg() > 0 {
		return migrateOptions{}, fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	if err := applyEtcdEnv(fs, getenv); err != nil {
		return migrateOptions{}, err
	}
	return validateMigrate(r)
}

func applyEtcdEnv(fs *flag.FlagSet, getenv func(string) string) error {
	return applyEnv(fs, getenv, func(name string) bool { return strings.HasPrefix(name, "etcd-") })
}

func validateMigrate(r migrateFlags) (migrateOptions, error) {
	o := migrateOptions{
		v2Prefix: r.etcd.prefix, v3Prefix: r.v3Prefix,
		caFile: r.etcd.caFile, certFile: r.etcd.certFile, keyFile: r.etcd.keyFile, username: r.etcd.username, password: r.etcd.password,
		dryRun: r.dryRun, force: r.force, timeout: r.timeout,
	}
	if o.v3Prefix == "" {
		o.v3Prefix = o.v2Prefix
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	o.endpoints = parseEndpoints(r.etcd.endpoints, bad)
	if !strings.HasPrefix(o.v2Prefix, "/") {
		bad("--etcd-prefix: %q must start with /", o.v2Prefix)
	}
	if !strings.HasPrefix(o.v3Prefix, "/") {
		bad("--v3-prefix: %q must start with /", o.v3Prefix)
	}
	if (r.etcd.certFile == "") != (r.etcd.keyFile == "") {
		bad("--etcd-certfile %q and --etcd-keyfile %q must be given together", r.etcd.certFile, r.etcd.keyFile)
	}
	if r.timeout <= 0 {
		bad("--timeout: %s must be positive", r.timeout)
	}
	return o, errors.Join(errs...)
}
