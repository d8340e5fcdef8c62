package gcp

import (
	"context"
	"fmt"
	"slices"
	"strings"

	compute "google.golang.org/api/compute/v1"

	pack "github.com/unikfile/unikfile/stages/package"
)

// instanceResource is the instance unikfile creates: one boot disk from
// the image, deleted with it; labels to find it again; the serial port
// enabled; the network tag its firewall rule targets; an external address
// when asked; no service account (the guest calls no Google API).
func instanceResource(cfg Config, s *Settings, img *pack.Image, description string) *compute.Instance {
	nic := &compute.NetworkInterface{Network: cfg.networkPath(), NicType: "VIRTIO_NET"}
	if s.NIC == NICGVNIC {
		nic.NicType = "GVNIC"
	}
	if s.Subnetwork != "" {
		nic.Subnetwork = "projects/" + cfg.Project + "/regions/" + region(cfg.Zone) + "/subnetworks/" + s.Subnetwork
	}
	if s.ExternalIP {
		nic.AccessConfigs = []*compute.AccessConfig{{Type: "ONE_TO_ONE_NAT", Name: "external-nat"}}
	}
	enable := "TRUE"
	inst := &compute.Instance{
		Name:        cfg.Instance,
		Description: description,
		MachineType: "zones/" + cfg.Zone + "/machineTypes/" + cfg.MachineType,
		Labels:      cfg.Labels,
		Metadata:    &compute.Metadata{Items: []*compute.MetadataItems{{Key: "serial-port-enable", Value: &enable}}},
		Disks: []*compute.AttachedDisk{{
			Boot: true, AutoDelete: true, Type: "PERSISTENT", Mode: "READ_WRITE",
			InitializeParams: &compute.AttachedDiskInitializeParams{
				SourceImage: "projects/" + cfg.Project + "/global/images/" + cfg.Image,
				Labels:      cfg.Labels,
			},
		}},
		NetworkInterfaces: []*compute.NetworkInterface{nic},
	}
	if cfg.Firewall != "" {
		inst.Tags = &compute.Tags{Items: []string{cfg.Firewall}}
	}
	if img.Boot == pack.BootUEFI {
		// The unified kernel image is not signed for Secure Boot.
		inst.ShieldedInstanceConfig = &compute.ShieldedInstanceConfig{EnableSecureBoot: false, EnableVtpm: true, EnableIntegrityMonitoring: true}
		inst.ShieldedInstanceConfig.ForceSendFields = []string{"EnableSecureBoot"}
	}
	return inst
}

// insertInstance creates the instance and waits until GCE has started it.
func (b *booting) insertInstance(ctx context.Context) error {
	cfg := b.cfg
	res := instanceResource(cfg, b.s, b.spec.Image, fmt.Sprintf("unikfile instance %s of app %s, target %s, %s", b.spec.ID, b.app, b.spec.Target.Name, b.spec.Project))
	o := op{what: "create instance " + cfg.Instance, perm: "compute.instances.create", resource: cfg.instancePath()}
	rid := requestID()
	// The instance's name is this boot's own (it holds the instance ID),
	// so its removal is registered before the call: a call cancelled (or
	// whose answer is lost) after GCE made the instance leaves nothing
	// either, and removing one that was never made is no error.
	b.undo("delete instance "+cfg.Instance, func(ctx context.Context) error { return b.p.deleteInstance(ctx, b.svc, cfg) })
	var gop *compute.Operation
	err := retry(ctx, b.p.backoff(), func() (err error) {
		gop, err = b.svc.compute.Instances.Insert(cfg.Project, cfg.Zone, res).RequestId(rid).Context(ctx).Do()
		return err
	})
	switch {
	case isConflict(err):
		// A retry of this boot: the instance is this one's; wait for it
		// like for a new one.
		return nil
	case isNotFound(err) && strings.Contains(err.Error(), cfg.Image):
		return err // the image is gone: the caller makes it again
	case err != nil:
		return apiError(o, err)
	}
	return b.p.waitZone(ctx, b.svc.compute, cfg.Project, cfg.Zone, gop, o.what)
}

// getInstance reads the instance.
func (p *Provider) getInstance(ctx context.Context, svc *services, cfg Config) (*compute.Instance, error) {
	var gi *compute.Instance
	err := retry(ctx, p.backoff(), func() (err error) {
		gi, err = svc.compute.Instances.Get(cfg.Project, cfg.Zone, cfg.Instance).Context(ctx).Do()
		return err
	})
	if err != nil && !isNotFound(err) {
		return nil, apiError(op{what: "read instance " + cfg.Instance, perm: "compute.instances.get", resource: cfg.instancePath()}, err)
	}
	return gi, err
}

// addresses are the instance's external and internal IPv4 addresses.
func addresses(gi *compute.Instance) (external, internal string) {
	for _, n := range gi.NetworkInterfaces {
		if internal == "" {
			internal = n.NetworkIP
		}
		for _, a := range n.AccessConfigs {
			if external == "" && a.NatIP != "" {
				external = a.NatIP
			}
		}
	}
	return external, internal
}

// deleteInstance deletes the instance (GCE shuts the guest down first, so
// the app gets SIGTERM) with its boot disk, and waits; an instance that is
// gone is not an error.
func (p *Provider) deleteInstance(ctx context.Context, svc *services, cfg Config) error {
	o := op{what: "delete instance " + cfg.Instance, perm: "compute.instances.delete", resource: cfg.instancePath()}
	rid := requestID()
	var gop *compute.Operation
	err := retry(ctx, p.backoff(), func() (err error) {
		gop, err = svc.compute.Instances.Delete(cfg.Project, cfg.Zone, cfg.Instance).RequestId(rid).Context(ctx).Do()
		return err
	})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return apiError(o, err)
	}
	return p.waitZone(ctx, svc.compute, cfg.Project, cfg.Zone, gop, o.what)
}

// orphans are the instances of the same project, target and app that
// unikfile's records do not know (neither this one nor those it replaces):
// left by a lost state directory. They are listed by labels.
func (p *Provider) orphans(ctx context.Context, svc *services, cfg Config, keep []string) ([]*compute.Instance, error) {
	filter := labelFilter(cfg.Labels, labelManaged, labelProject, labelTarget, labelApp)
	var out []*compute.Instance
	err := retry(ctx, p.backoff(), func() error {
		out = out[:0]
		return svc.compute.Instances.List(cfg.Project, cfg.Zone).Filter(filter).Context(ctx).Pages(ctx, func(l *compute.InstanceList) error {
			for _, gi := range l.Items {
				if !slices.Contains(keep, gi.Name) {
					out = append(out, gi)
				}
			}
			return nil
		})
	})
	if err != nil {
		return nil, apiError(op{what: "list the instances of app " + cfg.Labels[labelApp], perm: "compute.instances.list",
			resource: "projects/" + cfg.Project + "/zones/" + cfg.Zone}, err)
	}
	return out, nil
}
