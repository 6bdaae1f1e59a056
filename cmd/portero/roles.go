package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/portero/portero/authn"
)

const rolesUsage = `usage: portero roles <command> [arguments] [--config FILE]

  list [--json]                       every role and its permissions
  create NAME [--permissions P,Q]     add a role
  update ROLE [--name N] [--permissions P,Q]
                                      rename a role or replace its permissions; live
                                      sessions of its users follow at once
  delete ROLE                         remove a role nobody has

ROLE is a role's name or id. The seeded roles admin (1) and user (2) cannot be
deleted, and admin cannot be renamed.
`

func cmdRoles(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, rolesUsage)
		return 2
	}
	cmd := args[0]
	switch cmd {
	case "list", "create", "update", "delete":
	case "help", "-h", "--help":
		fmt.Fprint(stdout, rolesUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "portero roles: unknown command %q\n\n%s", cmd, rolesUsage)
		return 2
	}
	fs := flag.NewFlagSet("roles "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, rolesUsage) }
	cfgPath := fs.String("config", getenv("PORTERO_CONFIG"), "configuration file (or PORTERO_CONFIG)")
	asJSON := fs.Bool("json", false, "print JSON (list)")
	var name, perms optString
	fs.Var(&name, "name", "new name (update)")
	fs.Var(&perms, "permissions", "comma-separated permissions (create, update)")
	positional, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return 2
	}
	if want := map[string]int{"list": 0, "create": 1, "update": 1, "delete": 1}[cmd]; len(positional) != want {
		fmt.Fprintf(stderr, "portero roles %s: want %d argument(s), got %v\n\n%s", cmd, want, positional, rolesUsage)
		return 2
	}
	a, code := cliApp(ctx, "roles", *cfgPath, getenv, stderr)
	if code != 0 {
		return code
	}
	defer func() { _ = a.close(context.Background()) }()
	fail := func(err error) int {
		fmt.Fprintf(stderr, "portero roles %s: %v\n", cmd, err)
		return 1
	}
	op := cliOperator(getenv)
	var permissions *[]string
	if perms.v != nil {
		p := splitList(*perms.v)
		permissions = &p
	}

	switch cmd {
	case "list":
		roles, err := a.svc.ListRoles(ctx)
		if err != nil {
			return fail(err)
		}
		if *asJSON {
			return writeCLIJSON(stdout, roles)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tPERMISSIONS")
		for _, r := range roles {
			fmt.Fprintf(tw, "%d\t%s\t%s\n", r.ID, r.Name, strings.Join(r.Permissions, ","))
		}
		_ = tw.Flush()
	case "create":
		r := authn.Role{Name: positional[0]}
		if permissions != nil {
			r.Permissions = *permissions
		}
		created, err := a.svc.CreateRole(ctx, op, r, cliMeta)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "created role %s (%d)\n", created.Name, created.ID)
	case "update", "delete":
		r, err := a.svc.FindRole(ctx, positional[0])
		if err != nil {
			return fail(fmt.Errorf("%s: %w", positional[0], err))
		}
		if cmd == "delete" {
			if err := a.svc.DeleteRole(ctx, op, r.ID, cliMeta); err != nil {
				return fail(err)
			}
			fmt.Fprintf(stdout, "deleted role %s (%d)\n", r.Name, r.ID)
			return 0
		}
		after, n, err := a.svc.UpdateRole(ctx, op, r.ID, authn.RoleUpdate{Name: name.v, Permissions: permissions}, cliMeta)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "updated role %s (%d): permissions %s; sessions of %d user(s) updated\n", after.Name, after.ID, strings.Join(after.Permissions, ","), n)
		if a.cfg.Sessions.Driver() == "memory" {
			fmt.Fprintln(stderr, "note: with memory:// sessions the live sessions are in the running server; make this change through its /roles API to reach them")
		}
	}
	return 0
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
