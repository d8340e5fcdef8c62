package gcp

import (
	"context"
	"fmt"

	compute "google.golang.org/api/compute/v1"
)

// serialReader reads an instance's first serial port (the guest's console)
// from where it last stopped, with getSerialPortOutput's start and next.
type serialReader struct {
	p    *Provider
	svc  *compute.Service
	cfg  Config
	next int64
}

// read returns the console bytes that appeared since the last read. GCE
// keeps the last MiB of a console; when older bytes were asked for and are
// gone, a line says how many were lost.
func (r *serialReader) read(ctx context.Context) ([]byte, error) {
	var out *compute.SerialPortOutput
	err := retry(ctx, r.p.backoff(), func() (err error) {
		out, err = r.svc.Instances.GetSerialPortOutput(r.cfg.Project, r.cfg.Zone, r.cfg.Instance).
			Port(1).Start(r.next).Context(ctx).Do()
		return err
	})
	if err != nil {
		if isNotFound(err) {
			return nil, err
		}
		return nil, apiError(op{what: "read the serial console of " + r.cfg.Instance,
			perm: "compute.instances.getSerialPortOutput", resource: r.cfg.instancePath()}, err)
	}
	var b []byte
	if out.Start > r.next {
		b = fmt.Appendf(b, "[unikfile: %d bytes of the serial console are gone: GCE keeps its last MiB]\n", out.Start-r.next)
	}
	b = append(b, out.Contents...)
	if out.Next > r.next {
		r.next = out.Next
	}
	return b, nil
}
