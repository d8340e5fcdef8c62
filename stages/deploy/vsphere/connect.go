package vsphere

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Environment variables, as govc reads them.
const (
	envURL      = "GOVC_URL"
	envUsername = "GOVC_USERNAME"
	envPassword = "GOVC_PASSWORD"
	envInsecure = "GOVC_INSECURE"
)

// endpoint is where to connect and as whom. Its String never shows the
// password.
type endpoint struct {
	URL      *url.URL // without userinfo
	User     *url.Userinfo
	Insecure bool
}

func (e endpoint) String() string { return e.URL.String() }

// endpointOf is the target's endpoint: its url (else GOVC_URL), and the
// credentials of GOVC_USERNAME and GOVC_PASSWORD, else of GOVC_URL's
// userinfo.
func endpointOf(s *Settings, getenv func(string) string) (endpoint, error) {
	raw := s.URL
	if raw == "" {
		raw = getenv(envURL)
	}
	if raw == "" {
		return endpoint{}, errors.New("no vSphere URL: set url in the target's vsphere block (\"https://vcenter.example.com/sdk\") or GOVC_URL")
	}
	return endpointAt(raw, s.Insecure, getenv)
}

// endpointAt is the endpoint of an SDK URL, with credentials from the
// environment (see endpointOf).
func endpointAt(raw string, insecure bool, getenv func(string) string) (endpoint, error) {
	u, err := parseURL(raw)
	if err != nil {
		return endpoint{}, err
	}
	e := endpoint{URL: u, User: u.User, Insecure: insecure}
	u.User = nil
	if env := getenv(envURL); e.User == nil && env != "" {
		if eu, err := parseURL(env); err == nil && eu.Host == u.Host {
			e.User = eu.User
		}
	}
	if name := getenv(envUsername); name != "" {
		e.User = url.UserPassword(name, getenv(envPassword))
	}
	if e.User == nil || e.User.Username() == "" {
		return endpoint{}, fmt.Errorf("no credentials for vSphere at %s: set GOVC_USERNAME and GOVC_PASSWORD (unikfile never stores them)", u.Host)
	}
	switch strings.ToLower(getenv(envInsecure)) {
	case "1", "true", "yes":
		e.Insecure = true
	}
	return e, nil
}

// connTimeout bounds a login; every call after it has its caller's context.
const connTimeout = 60 * time.Second

// connect logs in. The client is logged out by close.
func connect(ctx context.Context, e endpoint) (*govmomi.Client, error) {
	lctx, cancel := context.WithTimeout(ctx, connTimeout)
	defer cancel()
	sc := soap.NewClient(e.URL, e.Insecure)
	vc, err := vim25.NewClient(lctx, sc)
	if err != nil {
		return nil, connectError(e, err)
	}
	c := &govmomi.Client{Client: vc, SessionManager: session.NewManager(vc)}
	if err := c.Login(lctx, e.User); err != nil {
		if fault.Is(err, &types.InvalidLogin{}) {
			return nil, fmt.Errorf("vSphere at %s refused the login of user %q: check GOVC_USERNAME and GOVC_PASSWORD", e.URL.Host, e.User.Username())
		}
		return nil, connectError(e, err)
	}
	return c, nil
}

func connectError(e endpoint, err error) error {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var op *net.OpError
	switch {
	case errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci):
		return fmt.Errorf("vSphere at %s: its TLS certificate is not trusted (%v): add its CA to this host's trust store, or set insecure = true in the target's vsphere block (or GOVC_INSECURE=1) to skip the check", e.URL.Host, err)
	case errors.As(err, &op):
		return fmt.Errorf("no vSphere answers at %s (%v): check the url (or GOVC_URL) and that this host reaches it", e.URL, err)
	}
	return fmt.Errorf("vSphere at %s: %w", e.URL, err)
}

// close logs out, whatever happened to the caller's context.
func closeClient(ctx context.Context, c *govmomi.Client) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = c.Logout(lctx)
}

// inventory is what one instance lives in.
type inventory struct {
	dc     *object.Datacenter
	ds     *object.Datastore
	net    object.NetworkReference
	pool   *object.ResourcePool
	folder *object.Folder
	host   *object.HostSystem // nil: vSphere places the VM
}

// resolve finds the target's datacenter, datastore, network, resource
// pool, folder and host, each named by its setting or the only one there
// is.
func resolve(ctx context.Context, c *vim25.Client, s *Settings) (*inventory, error) {
	f := find.NewFinder(c, false)
	inv := &inventory{}
	var err error
	if inv.dc, err = f.DatacenterOrDefault(ctx, s.Datacenter); err != nil {
		return nil, choiceError("datacenter", "datacenter", s.Datacenter, err, func() []string { return names(f.DatacenterList(ctx, "*")) })
	}
	f.SetDatacenter(inv.dc)
	if inv.ds, err = f.DatastoreOrDefault(ctx, s.Datastore); err != nil {
		return nil, choiceError("datastore", "datastore", s.Datastore, err, func() []string { return names(f.DatastoreList(ctx, "*")) })
	}
	if inv.net, err = f.NetworkOrDefault(ctx, s.Network); err != nil {
		return nil, choiceError("network", "network", s.Network, err, func() []string { return netNames(f.NetworkList(ctx, "*")) })
	}
	if s.Host != "" {
		if inv.host, err = f.HostSystem(ctx, s.Host); err != nil {
			return nil, choiceError("host", "host", s.Host, err, func() []string { return names(f.HostSystemList(ctx, "*")) })
		}
	}
	switch {
	case s.ResourcePool != "":
		if inv.pool, err = f.ResourcePool(ctx, s.ResourcePool); err != nil {
			return nil, choiceError("resource pool", "resource_pool", s.ResourcePool, err, func() []string { return names(f.ResourcePoolList(ctx, "*/Resources")) })
		}
	case s.Cluster != "":
		cl, err := f.ClusterComputeResource(ctx, s.Cluster)
		if err != nil {
			return nil, choiceError("cluster", "cluster", s.Cluster, err, func() []string { return names(f.ClusterComputeResourceList(ctx, "*")) })
		}
		if inv.pool, err = cl.ResourcePool(ctx); err != nil {
			return nil, fmt.Errorf("cluster %s: %w", s.Cluster, err)
		}
	case inv.host != nil:
		if inv.pool, err = inv.host.ResourcePool(ctx); err != nil {
			return nil, fmt.Errorf("host %s: %w", s.Host, err)
		}
	default:
		if inv.pool, err = f.DefaultResourcePool(ctx); err != nil {
			return nil, choiceError("resource pool", "cluster, resource_pool or host", "", err, func() []string { return names(f.ResourcePoolList(ctx, "*/Resources")) })
		}
	}
	if inv.folder, err = f.FolderOrDefault(ctx, s.Folder); err != nil {
		return nil, choiceError("VM folder", "folder", s.Folder, err, nil)
	}
	return inv, nil
}

// lookup finds the datacenter and datastore of a recorded instance.
func lookup(ctx context.Context, c *vim25.Client, cfg *Config) (*object.Datacenter, *object.Datastore, error) {
	f := find.NewFinder(c, false)
	dc, err := f.Datacenter(ctx, cfg.Datacenter)
	if err != nil {
		return nil, nil, fmt.Errorf("datacenter %s: %w", cfg.Datacenter, err)
	}
	f.SetDatacenter(dc)
	ds, err := f.Datastore(ctx, cfg.Datastore)
	if err != nil {
		return nil, nil, fmt.Errorf("datastore %s: %w", cfg.Datastore, err)
	}
	return dc, ds, nil
}

func names[T interface{ Name() string }](l []T, err error) []string {
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(l))
	for _, o := range l {
		out = append(out, o.Name())
	}
	return out
}

func netNames(l []object.NetworkReference, err error) []string {
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(l))
	for _, o := range l {
		out = append(out, path.Base(o.GetInventoryPath()))
	}
	return out
}

// choiceError says which setting picks an object that was not found or
// not unique, and what there is.
func choiceError(kind, attr, name string, err error, list func() []string) error {
	var nf *find.NotFoundError
	var many *find.MultipleFoundError
	var def *find.DefaultNotFoundError
	var defMany find.DefaultMultipleFoundError
	var have string
	if list != nil {
		if l := list(); len(l) > 0 {
			have = " (there: " + strings.Join(l, ", ") + ")"
		}
	}
	switch {
	case errors.As(err, &many) || errors.As(err, &defMany):
		return fmt.Errorf("vsphere: more than one %s%s: set %s in the target's vsphere block", kind, have, attr)
	case errors.As(err, &nf) || errors.As(err, &def):
		if name == "" {
			return fmt.Errorf("vsphere: no %s found%s: set %s in the target's vsphere block", kind, have, attr)
		}
		return fmt.Errorf("vsphere: %s %q not found%s: fix %s in the target's vsphere block", kind, name, have, attr)
	}
	return fmt.Errorf("vsphere: find %s: %w", kind, err)
}
