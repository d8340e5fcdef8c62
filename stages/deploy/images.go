package deploy

import (
	"context"
	"time"

	"github.com/unikfile/unikfile/lang"
)

// RemoteImage is an image a provider keeps of its own (an AMI, say), which
// unikfile made there from the image of a digest.
type RemoteImage struct {
	// ID is the provider's name for it ("ami-...").
	ID string `json:"id"`
	// Digest is the unikfile image digest it was made from.
	Digest string `json:"digest"`
	// App is the app whose image it is, when the provider recorded it.
	App string `json:"app,omitempty"`
	// State is the provider's word for its state ("available", ...).
	State string `json:"state"`
	// Where is where it lives (a region, a pool).
	Where   string    `json:"where"`
	Created time.Time `json:"created"`
}

// ImageLister is implemented by providers that keep images of their own:
// `unikfile images --target NAME` lists what unikfile made for the
// target's settings (its account and region, its pool), in use or not.
type ImageLister interface {
	Images(ctx context.Context, t *lang.Target) ([]RemoteImage, error)
}
