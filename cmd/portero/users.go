package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/portero/portero/authn"
	"github.com/portero/portero/sessions"
)

// passwordEnv is where scripts pass a password: never on the command line,
// where every user of the machine can read it in the process list.
const passwordEnv = "PORTERO_USER_PASSWORD"

func cmdUsers(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "create" && args[0] != "unlock") {
		fmt.Fprint(stderr, "usage: portero users create --email E [--admin] [--config FILE]\n       portero users unlock E [--config FILE]\n")
		return 2
	}
	fs := flag.NewFlagSet("users "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", getenv("PORTERO_CONFIG"), "configuration file (or PORTERO_CONFIG)")
	email := fs.String("email", "", "the user's e-mail (create)")
	admin := fs.Bool("admin", false, "make the user an administrator (create)")
	first := fs.String("first-name", "", "first name (create)")
	last := fs.String("last-name", "", "last name (create)")
	positional, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return 2
	}
	if args[0] == "unlock" && *email == "" && len(positional) == 1 {
		*email = positional[0]
	} else if len(positional) > 0 {
		fmt.Fprintf(stderr, "portero users %s: unexpected arguments %v (passwords are never taken from the command line; use a prompt, stdin or %s)\n", args[0], positional, passwordEnv)
		return 2
	}
	if strings.TrimSpace(*email) == "" {
		fmt.Fprintf(stderr, "portero users %s: an e-mail is required\n", args[0])
		return 2
	}
	var cfgArgs []string
	if *cfgPath != "" {
		cfgArgs = []string{"--config", *cfgPath}
	}
	cfg, code := loadConfigFlag("users", cfgArgs, getenv, stderr)
	if code != 0 {
		return code
	}
	// The running server holds the spool directory; the CLI spools apart.
	cfg.Audit.SpoolDir += "-cli"
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "portero: %v\n", err)
		return 1
	}
	log = log.WithOptions(zap.IncreaseLevel(zap.WarnLevel))
	a, err := newApp(ctx, cfg, getenv, log)
	if err != nil {
		fmt.Fprintf(stderr, "portero users: %v\n", err)
		return 1
	}
	defer func() { _ = a.close(context.Background()) }()
	operator := &authn.Principal{Session: sessions.Session{UserID: "cli:" + os.Getenv("USER"), Roles: []string{"admin"}}}
	meta := authn.ClientMeta{UserAgent: "portero-cli"}

	switch args[0] {
	case "create":
		password, err := readPassword(getenv, stdin, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "portero users create: %v\n", err)
			return 1
		}
		in := authn.RegisterInput{Email: *email, Password: password, FirstName: *first, LastName: *last}
		if *admin {
			in.RoleID, in.IsSuperuser = ptr(1), ptr(true)
		}
		u, err := a.svc.Register(ctx, in, operator, meta)
		if err != nil {
			var pe *authn.PasswordPolicyError
			if errors.As(err, &pe) {
				fmt.Fprintf(stderr, "portero users create: password refused: %s\n", pe.Reason())
			} else {
				fmt.Fprintf(stderr, "portero users create: %v\n", err)
			}
			return 1
		}
		fmt.Fprintf(stdout, "created %s (%s, role %s)\n", u.Email, u.ID, u.Role)
	case "unlock":
		u, err := a.users.UserByEmail(ctx, *email)
		if err == nil {
			_, err = a.svc.Unlock(ctx, *operator, u.ID, meta)
		}
		if err != nil {
			fmt.Fprintf(stderr, "portero users unlock: %v\n", err)
			return 1
		}
		if cfg.Sessions.Driver() == "memory" {
			fmt.Fprintln(stderr, "note: with memory:// sessions the lockout counters live in the running server; use POST /users/{id}/unlock there")
		}
		fmt.Fprintf(stdout, "unlocked %s\n", u.Email)
	}
	return 0
}

// readPassword takes the password from PORTERO_USER_PASSWORD, a terminal
// prompt (asked twice, not echoed), or the first line of stdin.
func readPassword(getenv func(string) string, stdin io.Reader, stderr io.Writer) (string, error) {
	if p := getenv(passwordEnv); p != "" {
		return p, nil
	}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stderr, "Again: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(p1) != string(p2) {
			return "", errors.New("the passwords differ")
		}
		return string(p1), nil
	}
	if stdin == nil {
		return "", fmt.Errorf("no password: set %s or pipe it on stdin", passwordEnv)
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if line = strings.TrimRight(line, "\r\n"); line == "" {
		return "", fmt.Errorf("no password: set %s or pipe it on stdin", passwordEnv)
	}
	return line, nil
}

// parseInterspersed parses flags that may come after positional arguments
// (portero users unlock E --config F) and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
