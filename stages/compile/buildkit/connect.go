package buildkit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/moby/buildkit/client"
	// Connection helpers register their URL schemes with the client.
	_ "github.com/moby/buildkit/client/connhelper/dockercontainer"
	_ "github.com/moby/buildkit/client/connhelper/kubepod"

	"github.com/unikfile/unikfile/lang"
)

// DefaultHost is buildkitd's default address when it runs as root.
const DefaultHost = "unix:///run/buildkit/buildkitd.sock"

// Name is the executor's name in a build block's executor attribute;
// Auto chooses it when a buildkitd answers, else the local executor.
const (
	Name = "buildkit"
	Auto = "auto"
)

// HostEnv names the environment variable that points unikfile at a
// buildkitd; it wins over the Unikfile's buildkit_host and, when the
// Unikfile names no executor, selects the buildkit executor.
const HostEnv = "UNIKFILE_BUILDKIT_HOST"

// TLS environment variables for tcp:// addresses.
const (
	TLSCACertEnv     = "UNIKFILE_BUILDKIT_TLS_CA_CERT"
	TLSCertEnv       = "UNIKFILE_BUILDKIT_TLS_CERT"
	TLSKeyEnv        = "UNIKFILE_BUILDKIT_TLS_KEY"
	TLSServerNameEnv = "UNIKFILE_BUILDKIT_TLS_SERVER_NAME"
)

// Settings say which executor compiles and how to reach buildkitd.
type Settings struct {
	Executor string // local | buildkit | auto
	// Implied is true when Executor is buildkit only because HostEnv is
	// set: apps of languages BuildKit cannot compile yet then compile
	// locally, as with auto.
	Implied bool
	Host    string // "" is DefaultHost
	// TLS for tcp:// addresses: the CA that signed buildkitd's
	// certificate, and the client's certificate and key when buildkitd
	// asks for one. ServerName defaults to the address's host.
	TLSCACert, TLSCert, TLSKey, TLSServerName string
	// CacheFrom and CacheTo are BuildKit cache imports and exports; local
	// paths are relative to ProjectDir.
	CacheFrom, CacheTo []lang.CacheSpec
	ProjectDir         string
}

// SettingsFor combines the Unikfile's build block, an --executor flag
// ("" when not given) and the environment (nil: none) into Settings.
// Precedence: the flag, the Unikfile's executor, then UNIKFILE_BUILDKIT_HOST
// (which selects buildkit), then local. The address comes from
// UNIKFILE_BUILDKIT_HOST, then the Unikfile, then DefaultHost.
func SettingsFor(p *lang.Project, flagExecutor string, environ []string) Settings {
	env := func(k string) string {
		for _, kv := range environ {
			if name, v, ok := strings.Cut(kv, "="); ok && name == k {
				return v
			}
		}
		return ""
	}
	s := Settings{
		Executor:      p.Build.Executor,
		Host:          p.Build.BuildKitHost,
		CacheFrom:     p.Build.CacheFrom,
		CacheTo:       p.Build.CacheTo,
		ProjectDir:    p.Dir,
		TLSCACert:     env(TLSCACertEnv),
		TLSCert:       env(TLSCertEnv),
		TLSKey:        env(TLSKeyEnv),
		TLSServerName: env(TLSServerNameEnv),
	}
	if h := env(HostEnv); h != "" {
		s.Host = h
		if !p.Build.ExecutorSet {
			s.Executor, s.Implied = "buildkit", true
		}
	}
	if flagExecutor != "" {
		s.Executor, s.Implied = flagExecutor, false
	}
	if s.Executor == "" {
		s.Executor = "local"
	}
	if s.Host == "" {
		s.Host = DefaultHost
	}
	return s
}

// Probe timeouts: how long a buildkitd may take to answer.
const (
	probeTimeout     = 10 * time.Second // executor = "buildkit"
	autoProbeTimeout = 2 * time.Second  // executor = "auto"
)

// UnreachableError says that no buildkitd answered at an address.
type UnreachableError struct {
	Host string
	Err  error
}

func (e *UnreachableError) Error() string {
	var start string
	switch scheme, rest, _ := strings.Cut(e.Host, "://"); scheme {
	case "docker-container":
		start = fmt.Sprintf("start a container named %s that runs buildkitd (docker run -d --name %s --privileged moby/buildkit)", rest, rest)
	case "kube-pod":
		start = fmt.Sprintf("check that kubectl reaches the cluster and pod %s runs buildkitd", rest)
	default:
		start = fmt.Sprintf("start one there (as root: buildkitd --addr %s, with runc installed)", e.Host)
	}
	return fmt.Sprintf("no buildkitd answers at %s (%s); %s, "+
		"point %s or buildkit_host in the Unikfile's build block at a running buildkitd, or compile locally with --executor local",
		e.Host, shortErr(e.Err), start, HostEnv)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// schemes are the addresses unikfile can reach buildkitd at.
var schemes = []string{"unix", "tcp", "docker-container", "kube-pod"}

func checkHost(h string) error {
	scheme, rest, ok := strings.Cut(h, "://")
	for _, s := range schemes {
		if ok && scheme == s && rest != "" {
			return nil
		}
	}
	return fmt.Errorf("buildkitd address %q: write unix:///path/to/buildkitd.sock, tcp://host:port, docker-container://NAME or kube-pod://NAME (set in %s or the build block's buildkit_host)", h, HostEnv)
}

// shortErr drops gRPC's wrapping from a connection error and keeps its
// last 400 characters.
func shortErr(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "desc = "); i >= 0 {
		s = s[i+len("desc = "):]
	}
	s = strings.TrimSpace(strings.ReplaceAll(strings.Trim(s, `"`), `\n`, " "))
	if len(s) > 400 {
		s = "..." + s[len(s)-400:]
	}
	return s
}

// connect opens a client to s.Host and checks, within timeout, that a
// buildkitd answers and has a worker.
func connect(ctx context.Context, s Settings, timeout time.Duration) (*client.Client, error) {
	if err := checkHost(s.Host); err != nil {
		return nil, err
	}
	var opts []client.ClientOpt
	if strings.HasPrefix(s.Host, "tcp://") && (s.TLSCACert != "" || s.TLSCert != "") {
		if s.TLSCACert != "" {
			opts = append(opts, client.WithServerConfig(s.TLSServerName, s.TLSCACert))
		} else {
			opts = append(opts, client.WithServerConfigSystem(s.TLSServerName))
		}
		if s.TLSCert != "" || s.TLSKey != "" {
			if s.TLSCert == "" || s.TLSKey == "" {
				return nil, fmt.Errorf("BuildKit TLS: set both %s and %s (a client certificate and its key), or neither", TLSCertEnv, TLSKeyEnv)
			}
			opts = append(opts, client.WithCredentials(s.TLSCert, s.TLSKey))
		}
	}
	c, err := client.New(ctx, s.Host, opts...)
	if err != nil {
		return nil, &UnreachableError{Host: s.Host, Err: err}
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	workers, err := c.ListWorkers(pctx)
	if err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(pctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %s", timeout)
		}
		return nil, &UnreachableError{Host: s.Host, Err: err}
	}
	if len(workers) == 0 {
		c.Close()
		return nil, fmt.Errorf("buildkitd at %s has no worker: start it with one (buildkitd --oci-worker=true, with runc installed)", s.Host)
	}
	return c, nil
}

// Select returns the executor s asks for: nil for the local executor, or
// a connected *Executor. note is a line for the user saying which was
// chosen and why ("" for an explicit local). With "auto", a buildkitd that
// does not answer within two seconds means the local executor; with
// "buildkit" it is an *UnreachableError.
func Select(ctx context.Context, s Settings) (ex *Executor, note string, err error) {
	switch s.Executor {
	case "local", "":
		return nil, "", nil
	}
	if err := checkHost(s.Host); err != nil {
		return nil, "", err
	}
	switch s.Executor {
	case "buildkit":
		c, err := connect(ctx, s, probeTimeout)
		if err != nil {
			return nil, "", err
		}
		return newExecutor(c, s), "executor buildkit: compiling with buildkitd at " + s.Host, nil
	case "auto":
		c, err := connect(ctx, s, autoProbeTimeout)
		if err != nil {
			if ctx.Err() != nil {
				return nil, "", ctx.Err()
			}
			var ue *UnreachableError
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, fmt.Sprintf("executor auto: no buildkitd answers at %s (%s); compiling with the local toolchain", s.Host, shortErr(err)), nil
		}
		return newExecutor(c, s), "executor auto: buildkitd answers at " + s.Host + "; compiling with BuildKit", nil
	}
	return nil, "", fmt.Errorf("unknown executor %q: use local, buildkit or auto", s.Executor)
}
