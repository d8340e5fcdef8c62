package kbuild

import (
	"strings"
	"testing"
)

func TestFragment(t *testing.T) {
	n, _ := NeedsFor("go", Platform{})
	frag, err := Fragment(n)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"CONFIG_64BIT=y\n", "CONFIG_PVH=y\n", "CONFIG_VIRTIO_MMIO=y\n", "CONFIG_VIRTIO_NET=y\n",
		"CONFIG_SERIAL_8250_CONSOLE=y\n", "CONFIG_FUTEX=y\n", "CONFIG_EPOLL=y\n", "CONFIG_BLK_DEV_INITRD=y\n", "CONFIG_ACPI_BUTTON=y\n",
		"CONFIG_IPV6=y\n", "CONFIG_VIRTIO_BLK=y\n", "CONFIG_EROFS_FS=y\n", "CONFIG_OVERLAY_FS=y\n",
		"CONFIG_SYSVIPC=y\n", "CONFIG_AIO=y\n"} {
		if !strings.Contains(frag, want) {
			t.Errorf("fragment lacks %q:\n%s", want, frag)
		}
	}
	for _, not := range []string{"CONFIG_VIRTIO_PCI=", "CONFIG_PCI_MSI=", "CONFIG_EFI", "CONFIG_MODULES", "=m\n"} {
		if strings.Contains(frag, not) {
			t.Errorf("fragment of a Go microVM kernel has %q", not)
		}
	}
	again, _ := Fragment(Needs{Features: append([]string(nil), n.Features...)})
	if again != frag {
		t.Error("the same needs gave two fragments")
	}
	// An option two features share is listed once.
	both, _ := Fragment(Needs{Features: []string{"nvme", "virtio-blk"}})
	if c := strings.Count(both, "CONFIG_BLOCK=y"); c != 1 {
		t.Errorf("CONFIG_BLOCK=y listed %d times", c)
	}
	if _, err := Fragment(Needs{Features: []string{"bluetooth"}}); err == nil || !strings.Contains(err.Error(), `"bluetooth" is not known`) {
		t.Errorf("unknown feature: %v", err)
	}
}

func TestMissing(t *testing.T) {
	frag := "# comment\nCONFIG_A=y\nCONFIG_B=y\nCONFIG_N=64\n"
	config := "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_N=64\n"
	if got := Missing(frag, config); len(got) != 1 || got[0] != "CONFIG_B=y" {
		t.Errorf("Missing = %v", got)
	}
}
