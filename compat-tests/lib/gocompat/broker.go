package gocompat

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// OwnBroker is a strom broker owned by one scenario (the Go twin of lib/broker.py):
// STROM_BIN on a fixed free 127.0.0.1 port with its own data dir; Restart keeps both.
type OwnBroker struct {
	Binary string
	Dir    string
	Port   int
	cmd    *exec.Cmd
	log    *os.File
	// waitExit receives the process's exit once (cmd.Wait runs in a goroutine).
	waitExit chan error
}

// NewOwnBroker reports the scenario unsupported when STROM_BIN is unset (--bootstrap
// runs). The broker is stopped and its directory removed at any verdict.
func NewOwnBroker() *OwnBroker {
	bin := os.Getenv("STROM_BIN")
	if bin == "" {
		Unsupported("needs its own broker (STROM_BIN), not available with --bootstrap")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		Fail("no free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "strom-own-")
	if err != nil {
		Fail("temp dir: %v", err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "strom.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		Fail("broker log: %v", err)
	}
	b := &OwnBroker{Binary: bin, Dir: dir, Port: port, log: logf}
	AtExit(b.Close)
	return b
}

// Bootstrap is the own broker's host:port.
func (b *OwnBroker) Bootstrap() string { return fmt.Sprintf("127.0.0.1:%d", b.Port) }

// Start launches the broker and waits (<= 20 s) until it accepts connections.
func (b *OwnBroker) Start() *OwnBroker {
	b.cmd = exec.Command(b.Binary, "serve", "--listeners", "PLAINTEXT://"+b.Bootstrap(),
		"--log-dirs", filepath.Join(b.Dir, "data"), "--override", "strom.http.listener=127.0.0.1:0")
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	if err := b.cmd.Start(); err != nil {
		Fail("starting own broker %s: %v", b.Binary, err)
	}
	exited := make(chan error, 1)
	b.waitExit = exited
	go func(c *exec.Cmd) { exited <- c.Wait() }(b.cmd)
	dl := NewDeadline(20 * time.Second)
	for !dl.Expired() {
		select {
		case err := <-exited:
			b.cmd = nil
			Fail("own broker exited during startup: %v (log %s)", err, b.log.Name())
		default:
		}
		if c, err := net.DialTimeout("tcp", b.Bootstrap(), 500*time.Millisecond); err == nil {
			c.Close()
			return b
		}
		time.Sleep(50 * time.Millisecond)
	}
	Fail("own broker did not listen on %s within 20s", b.Bootstrap())
	return b
}

// Stop sends SIGTERM (or SIGKILL) and waits for the exit (SIGKILL after 15 s).
func (b *OwnBroker) Stop(kill bool) {
	if b.cmd == nil {
		return
	}
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = b.cmd.Process.Signal(sig)
	select {
	case <-b.waitExit:
	case <-time.After(15 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.waitExit
	}
	b.cmd = nil
}

// Restart stops and starts the broker on the same port and data dir.
func (b *OwnBroker) Restart(kill bool) {
	b.Stop(kill)
	b.Start()
}

// Close stops the broker and removes its directory.
func (b *OwnBroker) Close() {
	b.Stop(false)
	if b.log != nil {
		b.log.Close()
		b.log = nil
	}
	os.RemoveAll(b.Dir)
}
