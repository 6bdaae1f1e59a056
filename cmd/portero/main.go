// Command portero is the Portero authentication gateway.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Set at build time with -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: portero <command> [arguments]

commands:
  serve [--config FILE]        run the gateway (FILE also from PORTERO_CONFIG)
  migrate up|status [--config FILE]
                               apply or list schema migrations
  migrate copy --from URL --to URL [--merge] [--dry-run]
                               copy users, roles, sessions and audit history between databases
  users create --email E [--admin] [--config FILE]
                               create a user (password from a prompt, stdin or PORTERO_USER_PASSWORD)
  users unlock E [--config FILE]
                               lift a user's lockout
  users list|show|update|deactivate …
                               administer users (portero users help)
  users import-legacy --from URL --query SQL [--dry-run]
                               import the legacy app's users with their passwords
  roles list|create|update|delete …
                               administer roles (portero roles help)
  routes list|set ROUTE MODE|unset ROUTE|reset
                               fleet-wide route mode overrides; reset rolls back to the file
  routes explain METHOD PATH [--user EMAIL]
                               which route matches, its mode and source, what gateway would decide
  config check FILE            validate a configuration file
  config print FILE            print the effective configuration, secrets redacted
  version                      print the version
`

// run is main without the process: tests call it with their own arguments,
// environment and streams.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return cmdServe(ctx, args[1:], getenv, stderr)
	case "users":
		return cmdUsersAll(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "roles":
		return cmdRoles(ctx, args[1:], getenv, stdout, stderr)
	case "routes":
		return cmdRoutes(ctx, args[1:], getenv, stdout, stderr)
	case "migrate":
		return cmdMigrate(ctx, args[1:], getenv, stdout, stderr)
	case "config":
		return cmdConfig(args[1:], getenv, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "portero %s (%s)\n", version, commit)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "portero: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
