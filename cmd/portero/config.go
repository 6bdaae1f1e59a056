package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/portero/portero/configs"
)

func cmdConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "usage: portero config check|print FILE\n")
		return 2
	}
	fs := flag.NewFlagSet("config "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", getenv("PORTERO_CONFIG"), "configuration file")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		*path = fs.Arg(0)
	}
	if *path == "" {
		fmt.Fprint(stderr, "portero config: no file given\n")
		return 2
	}
	cfg, err := configs.Load(*path, getenv)
	if err != nil {
		printProblems(stderr, *path, err)
		return 1
	}
	switch args[0] {
	case "check":
		for _, w := range cfg.Warnings() {
			fmt.Fprintf(stderr, "warning: %s\n", w.InFile(*path))
		}
		fmt.Fprintf(stdout, "%s: ok\n", *path)
		return 0
	case "print":
		out, err := cfg.Redacted()
		if err != nil {
			fmt.Fprintf(stderr, "portero config print: %v\n", err)
			return 1
		}
		_, _ = stdout.Write(out)
		return 0
	default:
		fmt.Fprintf(stderr, "portero config: unknown subcommand %q\n", args[0])
		return 2
	}
}

// printProblems writes one line per problem so operators see them all at once.
func printProblems(w io.Writer, path string, err error) {
	problems := configs.Problems(err)
	if len(problems) == 0 {
		fmt.Fprintf(w, "%s: %v\n", path, err)
		return
	}
	for _, p := range problems {
		fmt.Fprintln(w, p.InFile(path))
	}
}
