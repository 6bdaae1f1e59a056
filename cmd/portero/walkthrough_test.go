package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const stepMarker = "@@STEP@@"

// TestREADMEWalkthrough runs the README's curl walk-through, line for line,
// against the binary with the embedded default (configs/dev.yaml, SQLite
// and in-memory sessions), and checks each "# expect:" line.
func TestREADMEWalkthrough(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the walk-through needs curl: apt-get install curl")
	}
	script, expects := walkthroughScript(t)

	_, m := start(t, regexp.MustCompile(`addr=(\S+)`), "demo-upstream", "-listen", "127.0.0.1:0")
	dir := t.TempDir()
	dev, err := os.ReadFile("../../configs/dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(dev)
	for old, repl := range map[string]string{
		`listen: ":8080"`:                   `listen: "127.0.0.1:0"`,
		`ops_listen: "127.0.0.1:9090"`:      `ops_listen: "127.0.0.1:0"`,
		`url: "http://127.0.0.1:8000"`:      fmt.Sprintf("url: %q", "http://"+m[1]),
		`url: "sqlite://./data/portero.db"`: fmt.Sprintf("url: %q", "sqlite://"+filepath.Join(dir, "portero.db")),
		`spool_dir: ./data/audit-spool`:     "spool_dir: " + filepath.Join(dir, "spool"),
		"level: debug":                      "level: info",
		"format: console":                   "format: json",
	} {
		if !strings.Contains(cfg, old) {
			t.Fatalf("configs/dev.yaml no longer contains %q; update this test", old)
		}
		cfg = strings.Replace(cfg, old, repl, 1)
	}
	cfgPath := filepath.Join(dir, "dev.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	const adminPassword = "Walk-Through-2026!"
	_, m = startWithEnv(t, []string{"PORTERO_ADMIN_PASSWORD=" + adminPassword},
		regexp.MustCompile(`"listen":"([^"]+)"`), "portero", "serve", "--config", cfgPath)

	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "P=http://"+m[1], "CONFIG="+cfgPath, "JAR="+filepath.Join(dir, "jar"), "ADMIN_PASSWORD="+adminPassword)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // a failing pipeline is judged by its output below
	steps := strings.Split(out.String(), stepMarker+"\n")
	defer func() {
		if t.Failed() {
			t.Logf("walk-through output:\n%s", out.String())
		}
	}()
	for i, want := range expects {
		if i >= len(steps) || !strings.Contains(steps[i], want.text) {
			got := ""
			if i < len(steps) {
				got = steps[i]
			}
			t.Errorf("README step %q:\nwant output containing %q\ngot %q", want.command, want.text, got)
		}
	}
}

type expectation struct{ command, text string }

// walkthroughScript turns the README's walk-through block into a script
// that prints a marker after every command checked by an "# expect:" line.
func walkthroughScript(t *testing.T) (string, []expectation) {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## Walk-through")
	if !ok {
		t.Fatal("README.md has no Walk-through section")
	}
	_, block, ok := strings.Cut(section, "```sh\n")
	if !ok {
		t.Fatal("the walk-through has no sh block")
	}
	block, _, _ = strings.Cut(block, "```")
	var script strings.Builder
	var expects []expectation
	last := ""
	for _, line := range strings.Split(block, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "# expect:"):
			if last == "" {
				t.Fatalf("README: %q follows no command", trimmed)
			}
			// A newline first: curl's output often lacks one.
			script.WriteString("echo; echo " + stepMarker + "\n")
			expects = append(expects, expectation{command: last, text: strings.TrimSpace(strings.TrimPrefix(trimmed, "# expect:"))})
			last = ""
		case trimmed == "" || strings.HasPrefix(trimmed, "#"):
		default:
			script.WriteString(line + "\n")
			last = trimmed
		}
	}
	if len(expects) < 8 {
		t.Fatalf("the walk-through checks only %d steps", len(expects))
	}
	return script.String(), expects
}
