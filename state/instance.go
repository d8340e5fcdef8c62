package state

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Instance states.
const (
	// Starting: the provider was asked to boot it and it is not ready yet
	// (or the command that booted it died before it was).
	Starting = "starting"
	// Running: ready and serving.
	Running = "running"
	// Exited: the app exited by itself; ExitStatus says how.
	Exited = "exited"
	// Stopped: stopped by unikfile (down, a replacement, Ctrl-C when attached).
	Stopped = "stopped"
	// Failed: gone without an exit status (the VM crashed or was killed).
	Failed = "failed"
)

// Instance is one booted image of one app of one target.
type Instance struct {
	// ID is the app's name and a random suffix, e.g. "hello-3f2a9c1b".
	ID string `json:"id"`
	// Project is the absolute directory of the Unikfile.
	Project  string `json:"project"`
	Target   string `json:"target"`
	App      string `json:"app"`
	Provider string `json:"provider"`
	// ImageDigest is the booted image's digest; the reconciler compares it to
	// decide whether an instance is up to date.
	ImageDigest string `json:"image_digest"`
	// SettingsDigest digests the target's settings that shape the instance
	// (provider settings, ports, memory): a change redeploys even when the
	// image is the same.
	SettingsDigest string `json:"settings_digest,omitempty"`
	ImageDir       string `json:"image_dir"`
	// RunDir holds the instance's files (console log, sockets, pid file).
	RunDir string `json:"run_dir"`
	// State is one of Starting, Running, Exited, Stopped, Failed.
	State string `json:"state"`
	// ExitStatus is the app's exit status once State is Exited.
	ExitStatus *int `json:"exit_status,omitempty"`
	// PID is the local hypervisor process, when there is one.
	PID int `json:"pid,omitempty"`
	// WatchPID is the `unikfile watch` process that booted the instance and
	// serves it through its own forwarder; 0 for instances of `unikfile up`.
	WatchPID int    `json:"watch_pid,omitempty"`
	Ports    []Port `json:"ports,omitempty"`
	// Created is when the instance was recorded; Started when it became ready.
	Created time.Time `json:"created"`
	Started time.Time `json:"started,omitzero"`
	// Config is the provider's typed configuration, exactly as the instance
	// was started (for QEMU: binary, accelerator, command-line inputs).
	Config json.RawMessage `json:"config,omitempty"`
}

// Port is one forwarded TCP port: Bind:Host on the host reaches Guest.
type Port struct {
	Bind  string `json:"bind"`
	Host  int    `json:"host"`
	Guest int    `json:"guest"`
}

// Alive reports whether the state is one where the instance may still be
// running.
func (i *Instance) Alive() bool { return i.State == Starting || i.State == Running }

// NewID returns a fresh instance ID for app: the app's name, a dash and ten
// random hex digits.
func NewID(app string) string {
	var b [5]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	return app + "-" + hex.EncodeToString(b[:])
}
