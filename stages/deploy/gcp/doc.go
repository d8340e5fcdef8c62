// Package gcp is the Google Compute Engine provider (`provider = "gcp"`):
// it owns the target's `gcp { ... }` block (settings.go) and runs gce
// images as instances, through google.golang.org/api's compute/v1 client
// and google.golang.org/api/storage/v1 (the JSON API, as the compute client), with Application Default Credentials.
//
// A boot uploads the gce archive to the target's bucket (a resumable
// upload), imports it as an image named and labelled by the archive's
// digest (reused by later boots, the staged object removed once it
// exists), makes a firewall rule of the instance's own for exactly the
// app's ports and the target's ingress ranges, and an instance labelled
// with the host's project, target, app and image; readiness, the guest's
// address and the exit status come from the serial console
// (getSerialPortOutput with start/next), read into stages/deploy/console.
// What a boot makes is written to the run directory before it is made,
// and removed again, last first, when the boot fails. Stop deletes the
// instance, its rule, and its image when no other instance uses it.
//
// Package gcefake is a Compute Engine endpoint for tests.
//
// It must not read the state store or decide which instances should exist
// (stages/deploy's reconciler does), nor build images.
package gcp
