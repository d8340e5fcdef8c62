// Package vsphere is the vSphere deploy provider: it runs streamOptimized
// VMDK images as VMs on vCenter or an ESXi host, through the vSphere API
// with govmomi, in this process (no govc, no container).
//
// An image is decoded here into the disk's plain bytes and uploaded,
// through the datastore's file service, as a flat disk into a folder named
// by its digest (unikfile-images/<digest>/), once: every later instance of
// that image, in any project, reuses it. Each instance gets a copy of it
// (CopyVirtualDisk, which turns the uploaded file into a disk of the
// datastore's own) in a folder of its own, and a VM named
// unikfile-<instance ID>: other 64-bit guest, the firmware the disk boots
// with, a vmxnet3 NIC on the network, COM1 writing to a file in that
// folder. That file is the console contract: the guest's init prints its
// address, readiness and exit status there, and the provider reads it
// through the datastore's file service (`logs` reads its tail). A stop
// asks for a guest shutdown, which vSphere grants only to guests with
// VMware Tools (unikfile's have none), then powers the VM off; the VM and
// its folder are deleted and the console's end kept in the run directory.
//
// Credentials come from the environment (GOVC_USERNAME, GOVC_PASSWORD,
// or GOVC_URL's userinfo) for every call and are never printed or
// stored; an instance's record holds its Config, which names everything
// the instance has on vSphere. A failed boot deletes what it created.
//
// It must not read the state store or decide which instances should exist
// (the reconciler in stages/deploy does), nor build images.
package vsphere
