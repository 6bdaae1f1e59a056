package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/portero/portero/authn"
	"github.com/portero/portero/proxy"
)

const routesUsage = `usage: portero routes <command> [arguments] [--config FILE]

  list [--json]          the route table in force: each route of the file, its
                         mode, and whether a fleet-wide override set it
  set ROUTE MODE         override a route's mode on every instance (within ~1s)
  unset ROUTE            remove a route's override: back to the file's mode
  reset                  remove every override: the file's table, everywhere
                         (reset ROUTE is unset ROUTE)
  explain METHOD PATH [--user EMAIL]
                         which route a request matches, its mode and source,
                         and what gateway would decide for that user

ROUTE is a route's path (every route on that path, whatever its methods), its
name as listed ("/api/x GET,POST"), or "default" for default_mode. MODE is
public, legacy, gateway, dual or shadow (forwarded as legacy while gateway's
decision is rehearsed, counted and audited). Only routes the file has can be overridden;
every change is audited as route.mode.changed.
`

// tableSwapper takes a new file table on a config reload: the router, or
// the toggles that lay the fleet's overrides on top of it.
type tableSwapper interface{ Swap(*proxy.Table) }

// startToggles puts the fleet's route overrides on top of the file's table
// before the first request, and keeps them current until the app closes.
func (a *app) startToggles(ctx context.Context, table *proxy.Table, router *proxy.Router, log *zap.Logger) error {
	a.toggles = proxy.NewToggles(table, router.Swap, proxy.NewOverrideStore(a.db), a.audit,
		log.With(zap.String("component", "route-toggles")), proxy.TogglesOptions{Metrics: a.metrics})
	loadCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.toggles.Refresh(loadCtx); err != nil {
		return fmt.Errorf("route overrides: %w", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.toggles.Run(runCtx) }()
	a.closers = append(a.closers, func(context.Context) error { stop(); <-done; return nil })
	return nil
}

// routeToggler is the toggles for the admin API, or none (a nil
// *proxy.Toggles in the interface would not compare equal to nil).
func (a *app) routeToggler() authn.RouteToggler {
	if a.toggles == nil {
		return nil
	}
	return a.toggles
}

func cmdRoutes(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, routesUsage)
		return 2
	}
	cmd := args[0]
	if cmd == "explain" {
		return cmdRoutesExplain(ctx, args[1:], getenv, stdout, stderr)
	}
	wantArgs := map[string][]int{"list": {0}, "set": {2}, "unset": {1}, "reset": {0, 1}}
	if cmd == "help" || cmd == "-h" || cmd == "--help" {
		fmt.Fprint(stdout, routesUsage)
		return 0
	}
	if _, ok := wantArgs[cmd]; !ok {
		fmt.Fprintf(stderr, "portero routes: unknown command %q\n\n%s", cmd, routesUsage)
		return 2
	}
	fs := flag.NewFlagSet("routes "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, routesUsage) }
	cfgPath := fs.String("config", getenv("PORTERO_CONFIG"), "configuration file (or PORTERO_CONFIG)")
	asJSON := fs.Bool("json", false, "print JSON")
	positional, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return 2
	}
	okArgs := false
	for _, n := range wantArgs[cmd] {
		okArgs = okArgs || len(positional) == n
	}
	if !okArgs {
		fmt.Fprintf(stderr, "portero routes %s: unexpected arguments %v\n\n%s", cmd, positional, routesUsage)
		return 2
	}
	a, code := cliApp(ctx, "routes", *cfgPath, getenv, stderr)
	if code != 0 {
		return code
	}
	defer func() { _ = a.close(context.Background()) }()
	fail := func(err error) int {
		fmt.Fprintf(stderr, "portero routes %s: %v\n", cmd, err)
		if errors.Is(err, proxy.ErrUnknownRoute) {
			fmt.Fprintln(stderr, "(portero routes list shows the routes of the file)")
		}
		return 1
	}
	table, err := proxy.NewTable(a.cfg.DefaultMode, a.cfg.Routes)
	if err != nil {
		return fail(err)
	}
	log := zap.NewNop()
	toggles := proxy.NewToggles(table, nil, proxy.NewOverrideStore(a.db), a.audit, log, proxy.TogglesOptions{})
	if err := toggles.Refresh(ctx); err != nil {
		return fail(err)
	}
	op := cliOperator(getenv)
	by := proxy.Actor{ID: op.Session.UserID, UserAgent: cliMeta.UserAgent}

	var changes []proxy.ModeChange
	switch {
	case cmd == "list":
		return printRoutes(stdout, toggles.View(), *asJSON)
	case cmd == "set":
		changes, err = toggles.Set(ctx, positional[0], proxy.Mode(strings.ToLower(positional[1])), by)
	case cmd == "unset" || len(positional) == 1:
		changes, err = toggles.Unset(ctx, positional[0], by)
	default:
		changes, err = toggles.Reset(ctx, by)
	}
	if err != nil {
		return fail(err)
	}
	if *asJSON {
		return writeCLIJSON(stdout, map[string]any{"changed": changes, "table": toggles.View()})
	}
	if len(changes) == 0 {
		fmt.Fprintln(stdout, "no override to remove: nothing changed")
	}
	for _, c := range changes {
		to := string(c.New)
		if to == "" {
			to = "(not in the file)"
		}
		fmt.Fprintf(stdout, "%s: %s -> %s\n", c.Route, c.Old, to)
	}
	if len(changes) > 0 {
		fmt.Fprintln(stdout, "every running instance applies this within about a second")
	}
	return 0
}

func printRoutes(w io.Writer, v proxy.RoutesView, asJSON bool) int {
	if asJSON {
		return writeCLIJSON(w, v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tFILE\tMODE\tSOURCE\tCHANGED BY\tAT")
	for _, r := range v.Routes {
		by, at := "-", "-"
		if r.Override != nil {
			by, at = r.Override.By, r.Override.At.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.FileMode, r.Mode, r.Source, by, at)
	}
	for _, o := range v.Orphans {
		fmt.Fprintf(tw, "%s\t-\t%s\toverride, not in the file (not applied)\t%s\t%s\n", o.Route, o.Mode, o.By, o.At.UTC().Format(time.RFC3339))
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "overrides version %d\n", v.Version)
	return 0
}
