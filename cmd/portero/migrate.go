package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/portero/portero/configs"
	"github.com/portero/portero/storage"
)

func cmdMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "copy" {
		return cmdMigrateCopy(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || (args[0] != "up" && args[0] != "status") {
		fmt.Fprint(stderr, "usage: portero migrate up|status [--config FILE]\n       portero migrate copy --from URL --to URL [--merge] [--dry-run]\n")
		return 2
	}
	cfg, code := loadConfigFlag("migrate "+args[0], args[1:], getenv, stderr)
	if code != 0 {
		return code
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	db, err := storage.Open(ctx, cfg.Storage.URL.Reveal())
	if err != nil {
		fmt.Fprintf(stderr, "portero migrate: %v\n", err)
		return 1
	}
	defer db.Close()

	if args[0] == "up" {
		if err := db.Migrate(ctx); err != nil {
			fmt.Fprintf(stderr, "portero migrate up: %v\n", err)
			return 1
		}
	}
	status, err := db.MigrationStatus(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "portero migrate status: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "VERSION\tNAME\tSTATE\tAPPLIED AT\n")
	for _, s := range status {
		state, at := "pending", ""
		switch {
		case s.Unknown:
			state, at = "unknown to this binary", s.AppliedAt.Format(time.RFC3339)
		case s.Applied:
			state, at = "applied", s.AppliedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%04d\t%s\t%s\t%s\n", s.Version, s.Name, state, at)
	}
	_ = tw.Flush()
	return 0
}

// loadConfigFlag reads --config (or PORTERO_CONFIG, or a lone argument);
// without either, the built-in defaults apply.
func loadConfigFlag(name string, args []string, getenv func(string) string, stderr io.Writer) (configs.Config, int) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", getenv("PORTERO_CONFIG"), "configuration file (or PORTERO_CONFIG)")
	if err := fs.Parse(args); err != nil {
		return configs.Config{}, 2
	}
	if fs.NArg() == 1 && *path == "" {
		*path = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "portero %s: unexpected arguments %v\n", name, fs.Args())
		return configs.Config{}, 2
	}
	if *path == "" {
		cfg := configs.Default()
		if err := cfg.Validate(); err != nil {
			printProblems(stderr, "defaults", err)
			return configs.Config{}, 1
		}
		return cfg, 0
	}
	cfg, err := configs.Load(*path, getenv)
	if err != nil {
		printProblems(stderr, *path, err)
		return configs.Config{}, 1
	}
	return cfg, 0
}

// configPath is the file serve was given, for reloads ("" for defaults).
func configPath(args []string, getenv func(string) string) string {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", getenv("PORTERO_CONFIG"), "")
	_ = fs.Parse(args)
	if *path == "" && fs.NArg() == 1 {
		return fs.Arg(0)
	}
	return *path
}
