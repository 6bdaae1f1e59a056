package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/portero/portero/authn"
)

const importUsage = `usage: portero users import-legacy --from URL --query SQL [--dry-run] [--reactivate] [--default-role ROLE] [--verbose] [--config FILE]

Imports the legacy app's users from its PostgreSQL database into Portero's.
The query's columns are matched by name: id (the legacy integer id, kept as
legacy_id), email and hashed_password are required; first_name, last_name,
role (a Portero role's name or id) and active (or is_active) are optional.
Alias the legacy table's columns in the query, e.g.

  portero users import-legacy --from postgres://reader@legacy-db/app \
    --query "SELECT id, email, hashed_password, first_name, last_name,
             role, is_active AS active FROM users"

bcrypt ($2a$, $2b$, $2y$), passlib bcrypt_sha256 and argon2id hashes are kept
as they are: users log in with the passwords they have, and the hash is
upgraded to argon2id at that login. The query runs in a read-only
transaction. Running the import again updates the users whose legacy row
changed and creates none twice (users are matched by legacy id); a password
set or upgraded in Portero since is kept. A row whose e-mail belongs to a
Portero user that is not the same legacy user is rejected, never linked.
A password may come from PGPASSWORD or ~/.pgpass instead of the URL.

`

func cmdImportLegacy(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("users import-legacy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, importUsage)
		fs.PrintDefaults()
	}
	cfgPath := fs.String("config", getenv("PORTERO_CONFIG"), "configuration file (or PORTERO_CONFIG)")
	from := fs.String("from", "", "the legacy PostgreSQL database URL; only read")
	query := fs.String("query", "", "SQL returning id, email, hashed_password[, first_name, last_name, role, active]")
	dryRun := fs.Bool("dry-run", false, "decide and report everything, write nothing")
	reactivate := fs.Bool("reactivate", false, "let active legacy rows reactivate users deactivated in Portero")
	defaultRole := fs.String("default-role", "user", "role of rows without one")
	verbose := fs.Bool("verbose", false, "list created and updated rows too, not only rejected ones")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *from == "" || strings.TrimSpace(*query) == "" {
		fmt.Fprint(stderr, "portero users import-legacy: --from and --query are required\n\n")
		fs.Usage()
		return 2
	}
	a, code := cliApp(ctx, "users", *cfgPath, getenv, stderr)
	if code != 0 {
		return code
	}
	defer func() { _ = a.close(context.Background()) }()

	rep, err := a.svc.ImportLegacy(ctx, authn.PostgresLegacySource{URL: *from, Query: *query},
		authn.ImportOptions{DryRun: *dryRun, DefaultRole: *defaultRole, Reactivate: *reactivate}, cliOperator(getenv), cliMeta)
	printImportReport(stdout, rep, *verbose)
	if rep.Updated > 0 && !rep.DryRun && a.cfg.Sessions.Driver() == "memory" {
		fmt.Fprintln(stderr, "note: with memory:// sessions the live sessions are in the running server: updated users keep theirs until they expire or the server restarts")
	}
	if err != nil {
		fmt.Fprintf(stderr, "portero users import-legacy: %s\n", scrubPasswords(err.Error(), *from))
		if rep.Created+rep.Updated > 0 && !rep.DryRun {
			fmt.Fprintln(stderr, "the rows above were imported; running the import again finishes it")
		}
		return 1
	}
	if rep.Rejected > 0 {
		return 3 // done, but some rows need a look
	}
	return 0
}

func printImportReport(w io.Writer, rep authn.ImportReport, verbose bool) {
	for _, row := range rep.Rows {
		// Rejected rows, and rows where Portero kept its own value over the
		// legacy table's, are always shown: both need an operator's look.
		if row.Outcome == authn.ImportCreated && !verbose || row.Outcome == authn.ImportUpdated && !verbose {
			continue
		}
		line := fmt.Sprintf("row %d (legacy id %d, %s): %s", row.Row, row.LegacyID, row.Email, row.Outcome)
		if len(row.Fields) > 0 {
			line += " " + strings.Join(row.Fields, ",")
		}
		if row.Reason != "" {
			line += ": " + row.Reason
		}
		fmt.Fprintln(w, line)
	}
	prefix := ""
	if rep.DryRun {
		prefix = "dry run, nothing written: "
	}
	kept := 0
	for _, row := range rep.Rows {
		if row.Outcome == authn.ImportSkipped {
			kept++
		}
	}
	skipped := "unchanged"
	if kept > 0 {
		skipped = fmt.Sprintf("%d of them kept as Portero has it, see above", kept)
	}
	fmt.Fprintf(w, "%screated %d, updated %d, skipped %d (%s), rejected %d\n", prefix, rep.Created, rep.Updated, rep.Skipped, skipped, rep.Rejected)
	reasons := rep.Reasons()
	keys := make([]string, 0, len(reasons))
	for k := range reasons {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  rejected, %s: %d\n", k, reasons[k])
	}
}
