package linux

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeFakeModule writes a minimal ELF64 relocatable file whose .modinfo
// section holds the given key=value pairs, as a kernel module's does.
func writeFakeModule(t testing.TB, path string, modinfo ...string) {
	t.Helper()
	info := []byte(strings.Join(modinfo, "\x00") + "\x00")
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	const ehsize, shentsize = 64, 64
	infoOff := ehsize
	shstrOff := infoOff + len(info)
	shOff := (shstrOff + len(shstr) + 7) &^ 7
	var b bytes.Buffer
	le := binary.LittleEndian
	// ELF header.
	b.Write([]byte{0x7f, 'E', 'L', 'F', 2, 1, 1, 0})
	b.Write(make([]byte, 8))
	binary.Write(&b, le, uint16(1))  // ET_REL
	binary.Write(&b, le, uint16(62)) // EM_X86_64
	binary.Write(&b, le, uint32(1))
	binary.Write(&b, le, uint64(0)) // entry
	binary.Write(&b, le, uint64(0)) // phoff
	binary.Write(&b, le, uint64(shOff))
	binary.Write(&b, le, uint32(0))
	binary.Write(&b, le, uint16(ehsize))
	binary.Write(&b, le, uint16(0)) // phentsize
	binary.Write(&b, le, uint16(0)) // phnum
	binary.Write(&b, le, uint16(shentsize))
	binary.Write(&b, le, uint16(3)) // shnum
	binary.Write(&b, le, uint16(2)) // shstrndx
	b.Write(info)
	b.Write(shstr)
	b.Write(make([]byte, shOff-b.Len()))
	section := func(name, typ uint32, off, size int) {
		binary.Write(&b, le, name)
		binary.Write(&b, le, typ)
		binary.Write(&b, le, uint64(0)) // flags
		binary.Write(&b, le, uint64(0)) // addr
		binary.Write(&b, le, uint64(off))
		binary.Write(&b, le, uint64(size))
		binary.Write(&b, le, uint32(0))
		binary.Write(&b, le, uint32(0))
		binary.Write(&b, le, uint64(1))
		binary.Write(&b, le, uint64(0))
	}
	section(0, 0, 0, 0)
	section(1, 1, infoOff, len(info))    // .modinfo, PROGBITS
	section(10, 3, shstrOff, len(shstr)) // .shstrtab, STRTAB
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeModules builds a module tree shaped like Debian's virtio and cloud
// NIC drivers.
func fakeModules(t *testing.T) string {
	dir := t.TempDir()
	mod := func(rel string, deps string) {
		writeFakeModule(t, filepath.Join(dir, rel), "license=GPL", "depends="+deps, "name="+moduleName(rel))
	}
	mod("kernel/drivers/virtio/virtio_ring.ko", "")
	mod("kernel/drivers/virtio/virtio.ko", "virtio_ring")
	mod("kernel/drivers/virtio/virtio_pci_modern_dev.ko", "")
	mod("kernel/drivers/virtio/virtio_pci_legacy_dev.ko", "")
	mod("kernel/drivers/virtio/virtio_pci.ko", "virtio_pci_modern_dev,virtio,virtio_ring,virtio_pci_legacy_dev")
	mod("kernel/net/core/failover.ko", "")
	mod("kernel/drivers/net/net_failover.ko", "failover")
	mod("kernel/drivers/net/virtio_net.ko", "net_failover,virtio,virtio_ring")
	mod("kernel/drivers/net/ethernet/amazon/ena/ena.ko", "")
	mod("kernel/drivers/net/dep-dash.ko", "")
	mod("kernel/drivers/net/uses_dash.ko", "dep_dash")
	mod("kernel/drivers/a/cycle_a.ko", "cycle_b")
	mod("kernel/drivers/a/cycle_b.ko", "cycle_a")
	mod("kernel/drivers/a/needs_ghost.ko", "ghost")
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/drivers/block/virtio_blk.ko\nkernel/fs/ext4/ext4.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kernel/drivers/net/zipped.ko.xz"), []byte("xz"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestModuleClosureOrder(t *testing.T) {
	dir := fakeModules(t)
	got, err := ModuleClosure(dir, []string{"virtio_net", "virtio-pci", "virtio_blk", "ena"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"kernel/net/core/failover.ko",
		"kernel/drivers/net/net_failover.ko",
		"kernel/drivers/virtio/virtio_ring.ko",
		"kernel/drivers/virtio/virtio.ko",
		"kernel/drivers/net/virtio_net.ko",
		"kernel/drivers/virtio/virtio_pci_legacy_dev.ko",
		"kernel/drivers/virtio/virtio_pci_modern_dev.ko",
		"kernel/drivers/virtio/virtio_pci.ko",
		// virtio_blk is built in: no file.
		"kernel/drivers/net/ethernet/amazon/ena/ena.ko",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order\n got %v\nwant %v", got, want)
	}
	again, _ := ModuleClosure(dir, []string{"virtio_net", "virtio-pci", "virtio_blk", "ena"})
	if !reflect.DeepEqual(got, again) {
		t.Error("not deterministic")
	}
	got, err = ModuleClosure(dir, []string{"uses-dash"})
	if err != nil || !reflect.DeepEqual(got, []string{"kernel/drivers/net/dep-dash.ko", "kernel/drivers/net/uses_dash.ko"}) {
		t.Errorf("'-' and '_': %v %v", got, err)
	}
}

func TestModuleClosureErrors(t *testing.T) {
	dir := fakeModules(t)
	for _, tc := range []struct {
		want []string
		msg  string
	}{
		{[]string{"gve"}, "kernel module gve not found in " + dir},
		{[]string{"needs_ghost"}, "kernel module ghost not found in " + dir + " (neither a .ko file nor in modules.builtin); needed by needs_ghost"},
		{[]string{"cycle_a"}, "cycle: cycle_a -> cycle_b -> cycle_a"},
		{[]string{"zipped"}, "zipped.ko.xz is compressed"},
	} {
		_, err := ModuleClosure(dir, tc.want)
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: error %v, want %q", tc.want, err, tc.msg)
		}
	}
}

func TestImageModulesOptional(t *testing.T) {
	dir := fakeModules(t)
	got, err := imageModules(dir) // gve and vmxnet3 absent: fine
	if err != nil {
		t.Fatal(err)
	}
	if len(got) == 0 || got[len(got)-1] != "kernel/drivers/net/ethernet/amazon/ena/ena.ko" {
		t.Errorf("modules %v", got)
	}
	if err := os.Remove(filepath.Join(dir, "kernel/drivers/net/virtio_net.ko")); err != nil {
		t.Fatal(err)
	}
	_, err = imageModules(dir)
	if err == nil || !strings.Contains(err.Error(), "virtio_net not found") {
		t.Errorf("missing virtio_net: %v", err)
	}
}

// TestModuleClosureRealKernel checks the closure on the kernel in the cache.
func TestModuleClosureRealKernel(t *testing.T) {
	k, err := ResolveKernel("", testCacheDir(), nil)
	if err != nil {
		t.Skipf("no kernel in the cache: %v", err)
	}
	got, err := imageModules(k.ModulesDir)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, p := range got {
		pos[moduleName(p)] = i
	}
	for _, m := range []string{"virtio_net", "virtio_pci"} {
		if _, ok := pos[m]; !ok {
			t.Errorf("%s missing from %v", m, got)
		}
	}
	// Every module after its dependencies.
	ix, err := loadModuleIndex(k.ModulesDir)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range got {
		deps, err := ix.depends(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range deps {
			if j, ok := pos[d]; ok && j > i {
				t.Errorf("%s loads before its dependency %s", p, d)
			} else if !ok && !ix.builtin[d] {
				t.Errorf("dependency %s of %s missing", d, p)
			}
		}
	}
	t.Logf("%d modules: %v", len(got), got)
}
