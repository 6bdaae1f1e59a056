package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/portero/portero/storage"
)

const migrateCopyUsage = `usage: portero migrate copy --from URL --to URL [--merge] [--dry-run]

Copies roles, users, session history and audit rows from one database to
another, in either direction between sqlite:// and postgres://, e.g. from the
embedded default to production:

  portero migrate copy --from sqlite://./data/portero.db --to postgres://portero@db/portero

The destination is migrated first and written in one transaction: a failed
copy leaves its data as it was. A password may come from PGPASSWORD or
~/.pgpass instead of the URL, which keeps it out of the process list.

`

// progressEvery is how many rows of one table pass between progress lines,
// so that a copy of a long audit history shows it is alive.
const progressEvery = 100_000

// cmdMigrateCopy is `portero migrate copy`: storage.Copy behind flags. It
// prints one line of counts per table on stdout; progress and errors go to
// stderr, never with a password.
func cmdMigrateCopy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("migrate copy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, migrateCopyUsage)
		fs.PrintDefaults()
	}
	from := fs.String("from", "", "source database URL (sqlite://PATH or postgres://…); only read")
	to := fs.String("to", "", "destination database URL (sqlite://PATH or postgres://…)")
	merge := fs.Bool("merge", false, "allow a destination that already has users or audit rows; rows it already has are skipped")
	dryRun := fs.Bool("dry-run", false, "read and count the source's rows and check the destination, but write nothing")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "portero migrate copy: unexpected arguments %v\n", fs.Args())
		return 2
	case *from == "" || *to == "":
		fmt.Fprint(stderr, "portero migrate copy: --from and --to are both required\n\n")
		fs.Usage()
		return 2
	case *from == *to:
		fmt.Fprint(stderr, "portero migrate copy: --from and --to name the same database\n")
		return 2
	}
	fail := func(what string, err error) int {
		fmt.Fprintf(stderr, "portero migrate copy: %s%s\n", what, scrubPasswords(err.Error(), *from, *to))
		if errors.Is(err, storage.ErrDestinationNotEmpty) {
			fmt.Fprint(stderr, "(to add only the rows it lacks, run again with --merge)\n")
		}
		return 1
	}

	src, err := storage.Open(ctx, *from)
	if err != nil {
		return fail("--from: ", err)
	}
	defer src.Close()
	dst, err := storage.Open(ctx, *to)
	if err != nil {
		return fail("--to: ", err)
	}
	defer dst.Close()

	verb := "copying"
	if *dryRun {
		verb = "dry run, nothing is written:"
	}
	fmt.Fprintf(stderr, "%s %s -> %s\n", verb, storage.Redact(*from), storage.Redact(*to))
	printed := make(map[string]int64) // per table, the last multiple of progressEvery shown
	report, err := storage.Copy(ctx, src, dst, storage.CopyOptions{
		Merge:  *merge,
		DryRun: *dryRun,
		Progress: func(tr storage.TableReport) {
			if mark := tr.Read - tr.Read%progressEvery; mark > printed[tr.Table] {
				printed[tr.Table] = mark
				fmt.Fprintf(stderr, "  %s: %d rows…\n", tr.Table, tr.Read)
			}
		},
	})
	if err != nil {
		return fail("", err)
	}

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "TABLE\tREAD\tWRITTEN\tSKIPPED\n")
	for _, tr := range report.Tables {
		if report.DryRun {
			fmt.Fprintf(tw, "%s\t%d\t-\t-\n", tr.Table, tr.Read)
		} else {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", tr.Table, tr.Read, tr.Written, tr.Skipped)
		}
	}
	_ = tw.Flush()
	return 0
}

// scrubPasswords removes the passwords of urls from msg, in every spelling
// they may take there. storage's own errors never contain one; this guards
// against a driver message that does.
func scrubPasswords(msg string, urls ...string) string {
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			continue
		}
		var secrets []string
		if pw, ok := u.User.Password(); ok {
			secrets = append(secrets, pw, url.QueryEscape(pw), url.PathEscape(pw))
		}
		if q, err := url.ParseQuery(u.RawQuery); err == nil {
			for _, k := range []string{"password", "sslpassword"} {
				for _, v := range q[k] {
					secrets = append(secrets, v, url.QueryEscape(v))
				}
			}
		}
		for _, s := range secrets {
			if s != "" {
				msg = strings.ReplaceAll(msg, s, "xxxxx")
			}
		}
	}
	return msg
}
