package deploy

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/unikfile/unikfile/lang"
	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/state"
)

// Spec is everything a provider needs to boot one instance of one app.
type Spec struct {
	// Project is the absolute directory of the Unikfile.
	Project string
	Target  *lang.Target
	// App is the app's model; it may be nil when only the image is known,
	// and then Image.App names the app.
	App *lang.App
	// Image is what to boot; its files are relative to ImageDir.
	Image    *pack.Image
	ImageDir string
	// Forwards are the host addresses the app's guest ports are served
	// on, for providers that forward (Target.Settings says; the reconciler
	// fills them with Forwards, watch with its internal ports). A provider
	// that reaches guests at their own address ignores them.
	Forwards []lang.Forward
	// RunDir is this instance's own directory (console log, sockets, pid
	// file, config). The provider creates it; a failed Boot removes it unless
	// it returns an instance (see Boot).
	RunDir string
	ID     string
	// Timeout bounds the wait for readiness; 0 means the provider's default.
	Timeout time.Duration
	// Attach runs in the foreground: console lines go to Console as they
	// appear, and Boot returns when the guest exits (or ctx ends, which then
	// stops the instance).
	Attach  bool
	Console io.Writer
	// Progress receives one-line messages for the user (e.g. a warning that
	// the boot uses emulation). Nil discards them.
	Progress func(msg string)
	// Replaces are the instances this one replaces once it is ready. A
	// provider whose instances hold host resources (QEMU's forwarded ports)
	// boots the new instance without them and, once it is ready, moves
	// them from the old instances to the new one before calling Ready.
	Replaces []*state.Instance
	// Ready is called once, when the instance is ready and holds its host
	// resources, with the instance in state Running. The reconciler records
	// it and stops the instances it replaces there. An error from Ready is
	// returned by Boot with the instance, which keeps running.
	Ready func(inst *state.Instance) error
}

// AppName is the app's name, from App or else Image.
func (s *Spec) AppName() string {
	if s.App != nil {
		return s.App.Name
	}
	if s.Image != nil {
		return s.Image.App
	}
	return ""
}

// Forwards are the forwards of app's guest ports through t's provider:
// the image's ports (what the guest listens on), else the app's. ok is
// false when the provider reaches apps at their own address.
func Forwards(t *lang.Target, a *lang.App, img *pack.Image) ([]lang.Forward, bool) {
	if t == nil || t.Settings == nil {
		return nil, false
	}
	var ports []int
	switch {
	case img != nil && len(img.Ports) > 0:
		ports = img.Ports
	case a != nil:
		ports = a.Ports
	}
	return t.Settings.Forwards(ports)
}

// Say sends a progress message, if anyone listens.
func (s *Spec) Say(format string, args ...any) {
	if s.Progress != nil {
		s.Progress(fmt.Sprintf(format, args...))
	}
}

// Provider runs instances on one kind of infrastructure. Its methods must
// be safe for concurrent use.
type Provider interface {
	// Boot starts the instance and returns when it is ready (every port
	// answers) or failed. When it fails it stops and removes what it started
	// and the error includes the last console lines. It returns a non-nil
	// instance with its error only when the instance should be recorded
	// anyway, e.g. State Exited when the app exited before it was ready; the
	// run directory is then kept for `unikfile logs`.
	Boot(ctx context.Context, spec Spec) (*state.Instance, error)
	// Refresh updates inst.State and inst.ExitStatus from the real world.
	Refresh(ctx context.Context, inst *state.Instance) error
	// Logs copies the console to w; with follow it keeps copying until ctx
	// ends or the instance stops.
	Logs(ctx context.Context, inst *state.Instance, follow bool, w io.Writer) error
	// Stop stops the instance and sets inst.State; it is idempotent. It does
	// not remove the run directory or the record (Down does).
	Stop(ctx context.Context, inst *state.Instance) error
}

// Env is what a provider gets from the host when it is constructed.
type Env struct {
	// StateDir is unikfile's state directory; providers keep their caches
	// under StateDir/<provider name>.
	StateDir string
}

// NewFunc constructs a provider.
type NewFunc func(env Env) (Provider, error)

// Registry maps provider names, as written in a target's `provider`
// attribute, to their constructors. stages/registry builds the
// table of every provider; tests build their own.
type Registry map[string]NewFunc

// New constructs the provider called name.
func (r Registry) New(name string, env Env) (Provider, error) {
	f, ok := r[name]
	if !ok {
		known := make([]string, 0, len(r))
		for k := range r {
			known = append(known, k)
		}
		slices.Sort(known)
		return nil, fmt.Errorf("unknown provider %q (known: %s)", name, strings.Join(known, ", "))
	}
	p, err := f(env)
	if err != nil {
		return nil, fmt.Errorf("provider %s: %w", name, err)
	}
	return p, nil
}

// PortInUseError says a host port an app needs is taken. Providers return
// it; the reconciler fills Holder when the holder is one of unikfile's own
// instances.
type PortInUseError struct {
	App   string
	Bind  string
	Port  int // the host port
	Guest int // the guest port forwarded from it
	// Holder describes the unikfile instance holding the port, if any.
	Holder string
	Err    error
}

func (e *PortInUseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "app %s: host port %s:%d (forwarded to guest port %d) is already in use", e.App, e.Bind, e.Port, e.Guest)
	switch {
	case e.Holder != "":
		fmt.Fprintf(&b, " by %s; stop it with `unikfile down` in its project, or", e.Holder)
	case e.Err != nil:
		fmt.Fprintf(&b, " (%v); free it, or", e.Err)
	default:
		b.WriteString("; free it, or")
	}
	fmt.Fprintf(&b, " map guest port %d to another host port in the target's qemu settings", e.Guest)
	return b.String()
}

func (e *PortInUseError) Unwrap() error { return e.Err }
