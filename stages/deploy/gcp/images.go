package gcp

import (
	"context"
	"sort"
	"strings"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/deploy"
)

// Images lists the images unikfile made in the target's project (any
// status), for `unikfile images --target`. The digest comes from the
// image's description (its label holds only 63 characters of it).
func (p *Provider) Images(ctx context.Context, t *lang.Target) ([]deploy.RemoteImage, error) {
	s := SettingsOf(t)
	if s == nil {
		s = &Settings{}
	}
	project, err := p.resolveProject(ctx, s)
	if err != nil {
		return nil, err
	}
	svc, err := p.clients(ctx)
	if err != nil {
		return nil, err
	}
	filter := labelFilter(map[string]string{labelManaged: managedValue}, labelManaged)
	var out []deploy.RemoteImage
	err = svc.compute.Images.List(project).Filter(filter).Pages(ctx, func(l *compute.ImageList) error {
		for _, im := range l.Items {
			r := deploy.RemoteImage{ID: im.Name, Digest: im.Labels[labelDigest], App: im.Labels[labelApp], State: im.Status, Where: "project " + project}
			if _, sum, ok := strings.Cut(im.Description, "archive sha256 "); ok && strings.HasPrefix(sum, r.Digest) {
				r.Digest = sum
			}
			r.Created, _ = time.Parse(time.RFC3339, im.CreationTimestamp)
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, apiError(op{what: "list the images of project " + project, perm: "compute.images.list", resource: "projects/" + project}, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

var _ deploy.ImageLister = (*Provider)(nil)
