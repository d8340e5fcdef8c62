// Package gcefake is a Compute Engine endpoint for tests, since no real one
// can run on a test machine: the compute v1 REST API for what unikfile
// uses (images, instances with their serial console, firewall rules,
// machine types, global and zonal operations), driven through the real
// google.golang.org/api client with option.WithEndpoint. It is as strict
// as GCE where unikfile could go wrong: required fields, names, labels,
// states (an image that is not READY cannot be booted or deleted, a
// console cannot be read before the instance runs), request IDs,
// permissions (Deny), access tokens (Keys, with an OAuth token endpoint);
// operations go PENDING, RUNNING, DONE with errors reported inside DONE
// operations; images.insert reads the archive from Cloud Storage and
// checks that it is a gzip'd GNU tar of one disk.raw of a whole number of
// GiB. No guest boots: a stand-in (Guest) writes the serial console lines
// the linux base's init would. Faults (Inject) fail any call.
//
// Storage puts github.com/fsouza/fake-gcs-server behind a front with the
// same faults, call counts and token checks.
//
// It is test infrastructure: nothing but tests may import it.
package gcefake
