package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"go.uber.org/zap"

	"github.com/portero/portero/authn"
	"github.com/portero/portero/proxy"
)

const explainUsage = `usage: portero routes explain METHOD PATH [--user EMAIL] [--config FILE]

Prints which route a request would match (or why the path is refused), the
route's mode in force and where it comes from (the file, or a fleet-wide
override), and with --user what gateway mode would decide for that user.
PATH is taken as the raw request path, exactly as a client would send it.
`

func cmdRoutesExplain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("routes explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, explainUsage) }
	cfgPath := fs.String("config", getenv("PORTERO_CONFIG"), "configuration file (or PORTERO_CONFIG)")
	email := fs.String("user", "", "e-mail of the user to decide for")
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(positional) != 2 {
		fmt.Fprint(stderr, explainUsage)
		return 2
	}
	// Routes match the path alone: a query or fragment pasted with it must
	// not make the path look like another.
	method, path := strings.ToUpper(positional[0]), positional[1]
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	a, code := cliApp(ctx, "routes", *cfgPath, getenv, stderr)
	if code != 0 {
		return code
	}
	defer func() { _ = a.close(context.Background()) }()
	fail := func(err error) int {
		fmt.Fprintf(stderr, "portero routes explain: %v\n", err)
		return 1
	}
	base, err := proxy.NewTable(a.cfg.DefaultMode, a.cfg.Routes)
	if err != nil {
		return fail(err)
	}
	// The toggles hand the effective table (file plus overrides) to swap,
	// exactly as they do for a running instance's router.
	effective := base
	toggles := proxy.NewToggles(base, func(t *proxy.Table) { effective = t }, proxy.NewOverrideStore(a.db), a.audit, zap.NewNop(), proxy.TogglesOptions{})
	if err := toggles.Refresh(ctx); err != nil {
		return fail(err)
	}
	route, err := effective.Decide(method, path)
	if err != nil {
		fmt.Fprintf(stdout, "%s %s: refused with 400 INVALID_PATH: %v\n", method, path, err)
		fmt.Fprintln(stdout, "(Portero refuses paths an upstream could read as another route: dot or empty segments, double encoding, ambiguous escapes)")
		return 0
	}
	source := "file"
	for _, st := range toggles.View().Routes {
		if st.Name == route.Name {
			source = st.Source
			if st.Override != nil {
				source = fmt.Sprintf("override by %s (file says %s)", st.Override.By, st.FileMode)
			}
		}
	}
	fmt.Fprintf(stdout, "route:  %s\n", route.Name)
	fmt.Fprintf(stdout, "mode:   %s\n", route.Mode)
	fmt.Fprintf(stdout, "source: %s\n", source)
	if len(route.Roles) > 0 {
		fmt.Fprintf(stdout, "roles:  any of %s\n", strings.Join(route.Roles, ", "))
	}
	if len(route.Permissions) > 0 {
		fmt.Fprintf(stdout, "permissions: all of %s\n", strings.Join(route.Permissions, ", "))
	}
	if *email == "" {
		return 0
	}
	u, err := a.users.UserByEmail(ctx, *email)
	if errors.Is(err, authn.ErrUserNotFound) {
		return fail(fmt.Errorf("no user %q", *email))
	}
	if err != nil {
		return fail(err)
	}
	roles := []string{u.Role}
	if u.IsSuperuser && u.Role != "superuser" {
		roles = append(roles, "superuser") // as the session snapshot has it
	}
	id := proxy.Identity{UserID: u.ID, Email: u.Email, Roles: roles, Permissions: u.Permissions}
	fmt.Fprintf(stdout, "user:   %s (role %s)\n", u.Email, strings.Join(roles, ", "))
	fmt.Fprintf(stdout, "gateway would: %s\n", explainDecision(route, id, u.IsActive))
	switch route.Mode {
	case proxy.ModePublic, proxy.ModeLegacy:
		fmt.Fprintf(stdout, "now (%s): forwarded without Portero's check; the legacy app decides\n", route.Mode)
	case proxy.ModeShadow:
		fmt.Fprintln(stdout, "now (shadow): forwarded as legacy; the gateway decision above is counted and, if a denial, audited")
	}
	return 0
}

// explainDecision is what gateway mode would answer this user with a live
// session on route.
func explainDecision(route *proxy.Route, id proxy.Identity, active bool) string {
	if !active {
		return "deny (401: the account is deactivated, so it has no session)"
	}
	switch route.Authorize(id) {
	case "role":
		return fmt.Sprintf("deny (403, reason role: the route needs any of %s)", strings.Join(route.Roles, ", "))
	case "permission":
		return fmt.Sprintf("deny (403, reason permission: the route needs all of %s)", strings.Join(route.Permissions, ", "))
	}
	return "allow (with a live session)"
}
