package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// helperEnv makes the test binary act as the demo-upstream command, so the
// SIGTERM test exercises main itself without a separate go build.
const (
	helperEnv     = "DEMO_UPSTREAM_TEST_RUN_MAIN"
	helperArgsEnv = "DEMO_UPSTREAM_TEST_ARGS"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Args = append([]string{"demo-upstream"}, strings.Fields(os.Getenv(helperArgsEnv))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		want    config
		wantErr bool
	}{
		{args: nil, want: config{listen: "127.0.0.1:8000", grace: 10 * time.Second}},
		{args: []string{"-listen", ":9000"}, want: config{listen: ":9000", grace: 10 * time.Second}},
		{args: []string{"-listen=127.0.0.1:0", "-shutdown-grace=2s"}, want: config{listen: "127.0.0.1:0", grace: 2 * time.Second}},
		{args: []string{"-shutdown-grace", "0s"}, wantErr: true},
		{args: []string{"-shutdown-grace", "soon"}, wantErr: true},
		{args: []string{"-nope"}, wantErr: true},
		{args: []string{"extra"}, wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseFlags(tt.args, io.Discard)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseFlags(%q) = %+v, %v; want %+v, error %v", tt.args, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestRunHelpAndBadAddress(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 10*time.Second)
	if err := run(ctx, []string{"-h"}, io.Discard); err != nil {
		t.Errorf("-h: %v", err)
	}
	if err := run(ctx, []string{"-listen", "256.0.0.1:http"}, io.Discard); err == nil {
		t.Error("an impossible address was accepted")
	}
}

// TestServeShutsDownGracefully starts the real server, opens an event stream
// and a WebSocket, then ends serve's context as a signal would: the stream
// must run to its end, the WebSocket must be told the server is going away,
// and serve must return nil.
func TestServeShutsDownGracefully(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 20*time.Second)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- serve(serveCtx, ln, 10*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	base := "http://" + ln.Addr().String()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/stream?n=4&interval_ms=100", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil { // the stream is under way
		t.Fatal(err)
	}

	ws, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ws.Read(ctx); err != nil {
		t.Fatal(err)
	}

	stop()

	events, _ := readEvents(t, br)
	if len(events) != 3 {
		t.Errorf("after shutdown began, %d more events arrived, want 3: %q", len(events), events)
	}
	_, _, err = ws.Read(ctx)
	if got := websocket.CloseStatus(err); got != websocket.StatusGoingAway {
		t.Errorf("WebSocket ended with %v (status %v), want going away", err, got)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("serve did not return")
	}
	if conn, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		conn.Close()
		t.Error("still accepting connections after shutdown")
	}
}

// TestSIGTERM runs the command as a process and sends it SIGTERM while an
// event stream is open: the stream must complete and the process exit 0.
func TestSIGTERM(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("no SIGTERM on Windows")
	}
	ctx := testContext(t, 20*time.Second)
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=1", helperArgsEnv+"=-listen 127.0.0.1:0 -shutdown-grace 10s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	addr := make(chan string, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`msg=listening addr=(\S+)`)
		for sc.Scan() {
			fmt.Fprintln(&log, sc.Text())
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-ctx.Done():
		t.Fatal("the process never said where it listens")
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/stream?n=4&interval_ms=100", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	events, _ := readEvents(t, br)
	if len(events) != 3 {
		t.Errorf("after SIGTERM, %d more events arrived, want 3", len(events))
	}
	<-logDone
	if err := cmd.Wait(); err != nil {
		t.Errorf("process ended with %v; log:\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "msg=stopped") {
		t.Errorf("no clean stop in the log:\n%s", log.String())
	}
}
