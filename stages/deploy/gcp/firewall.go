package gcp

import (
	"context"
	"fmt"
	"strconv"

	compute "google.golang.org/api/compute/v1"
)

// firewallResource is the rule of one instance: TCP to exactly the app's
// ports, from the ingress ranges, to the instance's network tag.
func firewallResource(cfg Config, description string) *compute.Firewall {
	ports := make([]string, 0, len(cfg.Ports))
	for _, n := range cfg.Ports {
		ports = append(ports, strconv.Itoa(n))
	}
	return &compute.Firewall{
		Name:         cfg.Firewall,
		Description:  description,
		Network:      cfg.networkPath(),
		Direction:    "INGRESS",
		Priority:     1000,
		Allowed:      []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: ports}},
		SourceRanges: cfg.Ingress,
		TargetTags:   []string{cfg.Firewall},
	}
}

// insertFirewall creates the instance's firewall rule and waits for it.
func (b *booting) insertFirewall(ctx context.Context) error {
	cfg := b.cfg
	res := firewallResource(cfg, fmt.Sprintf("unikfile: ports of instance %s (app %s)", b.spec.ID, b.app))
	o := op{what: "create firewall rule " + cfg.Firewall, perm: "compute.firewalls.create", resource: cfg.firewallPath()}
	rid := requestID()
	var gop *compute.Operation
	err := retry(ctx, b.p.backoff(), func() (err error) {
		gop, err = b.svc.compute.Firewalls.Insert(cfg.Project, res).RequestId(rid).Context(ctx).Do()
		return err
	})
	if err != nil {
		return apiError(o, err)
	}
	b.undo("delete firewall rule "+cfg.Firewall, func(ctx context.Context) error { return b.p.deleteFirewall(ctx, b.svc, cfg) })
	return b.p.waitGlobal(ctx, b.svc.compute, cfg.Project, gop, o.what)
}

// deleteFirewall deletes the instance's rule; one that is gone is not an
// error.
func (p *Provider) deleteFirewall(ctx context.Context, svc *services, cfg Config) error {
	o := op{what: "delete firewall rule " + cfg.Firewall, perm: "compute.firewalls.delete", resource: cfg.firewallPath()}
	rid := requestID()
	var gop *compute.Operation
	err := retry(ctx, p.backoff(), func() (err error) {
		gop, err = svc.compute.Firewalls.Delete(cfg.Project, cfg.Firewall).RequestId(rid).Context(ctx).Do()
		return err
	})
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return apiError(o, err)
	}
	return p.waitGlobal(ctx, svc.compute, cfg.Project, gop, o.what)
}
