//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/unikfile/unikfile/guest"
)

// readyPoll is how often the TCP tables are read while waiting for ports.
const readyPoll = 10 * time.Millisecond

// mismatchDelay is how long the app must listen on other ports than the
// declared ones (and not on those) before the init says so: an app may open
// an admin port before its main one.
const mismatchDelay = 5 * time.Second

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// startApp starts the app in its own session with stdout and stderr on the
// console and stdin on /dev/null.
func startApp(cfg *guest.Config) (int, error) {
	env := appEnv(cfg.Env)
	argv0, err := lookPath(cfg.Argv[0], env, isExecutable)
	if err != nil {
		return 0, err
	}
	dir := cfg.Dir
	if dir == "" {
		dir = "/"
	}
	stdin, err := os.Open("/dev/null")
	if err != nil {
		return 0, err
	}
	defer stdin.Close()
	out, err := os.OpenFile("/dev/console", os.O_WRONLY|syscall.O_NOCTTY, 0)
	if err != nil {
		out = os.Stdout
	} else {
		defer out.Close()
	}
	pid, err := syscall.ForkExec(argv0, cfg.Argv, &syscall.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []uintptr{stdin.Fd(), out.Fd(), out.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		msg := fmt.Sprintf("start %s: %v", argv0, err)
		var errno syscall.Errno
		if errors.As(err, &errno) {
			if h := execHint(argv0, errno); h != "" {
				msg += ": " + h
			}
		}
		return 0, errors.New(msg)
	}
	return pid, nil
}

// supervise starts the app and does PID 1's duties until it exits: reap
// every child, forward SIGTERM and SIGINT to the app's process group, stop
// the app when the power button is pressed (SIGTERM, then SIGKILL after
// guest.StopGraceSeconds), print the ready marker. It returns the app's
// exit status.
func supervise(log *logger, cfg *guest.Config, onStart func()) int {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	power := watchPowerButton(log)
	var kill <-chan time.Time

	pid, err := startApp(cfg)
	if err != nil {
		log.errorf("%v", err)
		return statusNotStarted
	}
	onStart()
	log.stepf("started %s (pid %d)", cfg.Argv[0], pid)

	stop := make(chan struct{})
	readyDone := make(chan struct{})
	go func() {
		defer close(readyDone)
		waitReady(log, cfg.Ports, stop)
	}()
	finish := func(status int) int {
		close(stop)
		<-readyDone
		return status
	}

	// The app leads its own session, so -pid is its whole process group.
	signalApp := func(s syscall.Signal) {
		if err := syscall.Kill(-pid, s); err != nil {
			_ = syscall.Kill(pid, s)
		}
	}
	for {
		select {
		case sig := <-sigs:
			if s := sig.(syscall.Signal); s == syscall.SIGTERM || s == syscall.SIGINT {
				log.stepf("forwarding %v to the app", s)
				signalApp(s)
			}
		case <-power:
			if kill == nil {
				log.line(fmt.Sprintf("unikfile-init: power button: stopping the app (SIGTERM; SIGKILL after %ds)", guest.StopGraceSeconds))
				signalApp(syscall.SIGTERM)
				kill = time.After(guest.StopGraceSeconds * time.Second)
			}
			continue
		case <-kill:
			log.line("unikfile-init: the app did not stop in time: SIGKILL")
			signalApp(syscall.SIGKILL)
			continue
		}
		for {
			var ws syscall.WaitStatus
			wpid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil || wpid <= 0 {
				break
			}
			if wpid == pid {
				status := exitStatus(ws.Exited(), ws.ExitStatus(), ws.Signaled(), int(ws.Signal()))
				log.stepf("app exited with status %d", status)
				return finish(status)
			}
		}
	}
}

// waitReady prints guest.ReadyMarker once every port listens, or at once
// when there are none. It gives up when stop is closed.
func waitReady(log *logger, ports []int, stop <-chan struct{}) {
	if len(ports) == 0 {
		log.raw(guest.ReadyMarker)
		return
	}
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	warned := map[int]bool{}
	var mismatch, told string
	var mismatchSince time.Time
	for {
		have, loopback := map[int]bool{}, map[int]bool{}
		for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
			if b, err := os.ReadFile(f); err == nil {
				listeningPorts(string(b), have, loopback)
			}
		}
		for _, p := range ports {
			if loopback[p] && !have[p] && !warned[p] {
				warned[p] = true
				log.errorf("the app listens on port %d on a loopback address only, which the host cannot reach; listen on 0.0.0.0:%d (or :%d) instead", p, p, p)
			}
		}
		if m := portMismatch(ports, have); m != mismatch {
			mismatch, mismatchSince = m, time.Now()
		}
		if mismatch != "" && mismatch != told && time.Since(mismatchSince) >= mismatchDelay {
			told = mismatch
			log.errorf("%s", mismatch)
		}
		if allListening(ports, have) {
			log.stepf("ports %v listening", ports)
			log.raw(guest.ReadyMarker)
			return
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
