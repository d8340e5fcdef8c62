// Package aws is the AWS deploy provider (provider = "aws"): it turns a raw
// disk image into an AMI through the EBS direct APIs and runs it on EC2.
//
// Image: StartSnapshot, PutSnapshotBlock of every 512 KiB block that holds
// data (zero blocks are skipped: EBS reads unwritten blocks as zeros; holes
// of a sparse file are not even read), each with its SHA-256, a bounded
// number at once, retried with backoff by the SDK's retryer (throttling and
// 5xx), the first failure cancelling the rest; CompleteSnapshot with the
// number of blocks and the linear aggregate checksum; a wait for
// "completed" that fails at once on "error"; RegisterImage (hvm, x86_64,
// ENA, the image's boot mode, /dev/xvda as root). AMIs and their snapshots
// are tagged with the image digest and reused by any later boot of it.
//
// Instance: a security group of unikfile's own per target and app holding
// exactly the app's TCP ports for the target's ingress blocks (none by
// default, with a warning); RunInstances with the project, target, app,
// digest and instance tags and a client token, so a retry is the same
// launch; readiness, the guest's address and the exit status from the
// console contract (stages/deploy/console) fed by GetConsoleOutput polling;
// the address from DescribeInstances into the instance's ports.
//
// Everything unikfile makes is found again by its tags, so a boot killed
// half-way leaves nothing the next `up` or `down` does not remove: Stop
// terminates the instance and then removes what it made and nothing uses
// any more (the AMIs of its digest, their snapshots, its own unregistered
// snapshots, the security group). A failed Boot removes what it created.
// What a boot created is also journaled in its run directory, with the
// region, before the first call that creates anything.
//
// Credentials come from the SDK's default chain and are never printed or
// stored. Errors name the API action; a denied one names the IAM
// permission it needs; a region that does not exist is said to be one.
//
// It must not read the state store or decide which instances should exist
// (stages/deploy does), nor build images. awstest is its test endpoint.
package aws
