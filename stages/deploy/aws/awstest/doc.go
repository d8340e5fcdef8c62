// Package awstest is a local endpoint that stands in for the two AWS APIs
// the aws provider calls, for tests and benchmarks on machines without AWS:
// the EC2 Query API (form-encoded POST, XML responses and errors, version
// 2016-11-15) and the EBS direct REST API (JSON, block bodies). It listens on
// 127.0.0.1 and is driven by the real SDK clients pointed at it with
// BaseEndpoint (or AWS_ENDPOINT_URL for a unikfile binary).
//
// It is a test double, so it is strict where AWS is strict: every request
// must carry a well-formed SigV4 signature made with the server's fixed
// credentials, for its region and the right service; required parameters
// are required; snapshots go pending → completed (or error, or error after
// their timeout), AMIs pending → available, instances pending → running →
// shutting-down → terminated (or stopping → stopped when the guest powers
// off); each PutSnapshotBlock is checked against its SHA-256, its block
// index against the volume size, the completion against the number of blocks
// written and the linear aggregate checksum; an AMI's snapshot cannot be
// deleted, a security group in use cannot be deleted, Nitro instance types
// need an ENA AMI. An allow-list of IAM actions (Allow) turns everything
// else into the errors AWS gives for a missing permission.
//
// No guest boots here: the endpoint stands in for the guest by serving, as
// an instance's console output, what the guest init prints (its address,
// ready and exit markers); Guest says what each instance prints.
//
// Faults (Inject) make chosen calls fail with a chosen AWS error, and
// FailSnapshots / FailImages make completions end in the error state. The
// inventory (Inventory) and the call log (Calls) are what tests assert on.
//
// It is the project's own rather than github.com/sivchari/kumo (which
// serves EBS direct and part of EC2): kumo has no AMI calls, and it is not
// strict where this double must be (it does not check a block's checksum or
// index, a completion's block count or aggregate checksum, and completes
// snapshots at once).
//
// It must not be used by unikfile itself, only by tests and bench.
package awstest
