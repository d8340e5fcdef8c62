package main

import (
	"reflect"
	"testing"
)

func TestPCIAliases(t *testing.T) {
	modinfo := []byte("\x7fELF junk\x00license=GPL\x00alias=pci:v00001D0Fd0000EC20sv*sd*bc*sc*i*\x00" +
		"alias=virtio:d00000001v*\x00alias=pci:v00001D0Fd00001EC2sv*sd*bc*sc*i*\x00depends=\x00")
	got := pciAliases(modinfo)
	want := []string{"pci:v00001D0Fd0000EC20sv*sd*bc*sc*i*", "pci:v00001D0Fd00001EC2sv*sd*bc*sc*i*"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q", got)
	}
	if a := pciAliases([]byte("\x00alias=pci:unterminated")); a != nil {
		t.Errorf("unterminated: %q", a)
	}
	if a := pciAliases([]byte("license=GPL\x00depends=virtio\x00")); a != nil {
		t.Errorf("no aliases: %q", a)
	}
}

func TestMatchesDevice(t *testing.T) {
	qemu := []string{
		"pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00",
		"pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", // virtio-net
	}
	virtioPCI := []string{"pci:v00001AF4d*sv*sd*bc*sc*i*"}
	ena := []string{"pci:v00001D0Fd0000EC20sv*sd*bc*sc*i*", "pci:v00001D0Fd0000EC21sv*sd*bc*sc*i*"}
	if !matchesDevice(virtioPCI, qemu) {
		t.Error("virtio_pci does not match QEMU's virtio-net")
	}
	if matchesDevice(ena, qemu) {
		t.Error("ena matches QEMU")
	}
	if matchesDevice(ena, nil) {
		t.Error("matched with no devices")
	}
	if !matchesDevice([]string{"pci:v[bad"}, qemu) {
		t.Error("a malformed pattern must count as a match")
	}
}
