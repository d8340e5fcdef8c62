package osv

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pack "github.com/unikfile/unikfile/stages/package"
	"github.com/unikfile/unikfile/stages/package/disk"
	"github.com/unikfile/unikfile/stages/package/osv/rofs"
)

// testBundle writes a small bundle tree.
func testBundle(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"app/main":                         "\x7fELF program",
		"app/data/greeting.txt":            "hello\n",
		"lib/x86_64-linux-gnu/libfoo.so.1": "lib",
	}
	for p, c := range files {
		f := filepath.Join(root, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(f), 0o755)
		if err := os.WriteFile(f, []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(root, "usr", "lib"), 0o755)
	if err := os.Symlink("/lib/x86_64-linux-gnu/libfoo.so.1", filepath.Join(root, "usr", "lib", "libfoo.so.1")); err != nil {
		t.Fatal(err)
	}
	return root
}

func testKernel(t *testing.T, boot bool) *Kernel {
	t.Helper()
	dir := t.TempDir()
	fakeKernel(t, dir, boot)
	k, err := ResolveKernel(dir, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testInput(t *testing.T, bundle string, k *Kernel) Input {
	ca := filepath.Join(t.TempDir(), "ca.crt")
	os.WriteFile(ca, []byte("CERTS"), 0o644)
	ready := filepath.Join(t.TempDir(), "ready")
	os.WriteFile(ready, []byte("READY"), 0o755)
	return Input{
		ReadyHelper: ready,
		App:         "api",
		BundleRoot:  bundle,
		Command:     Command{Argv: []string{"/app/main", "8080"}, Env: []string{"GREETING=hi"}, Dir: "/app"},
		Kernel:      k,
		Ports:       []int{8080},
		CACerts:     ca,
	}
}

// readRoot reads the direct-boot disk: MBR entry #2 and the ROFS in it.
func readRoot(t *testing.T, p string) (start, count uint32, tree map[string]rofs.Node) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if b[510] != 0x55 || b[511] != 0xaa {
		t.Fatal("no MBR signature")
	}
	e := b[446+16 : 446+32]
	if e[4] != 0x83 || e[2]&0x3f == 0 {
		t.Fatalf("partition #2: type %#x, CHS sector %d (OSv skips a zero one)", e[4], e[2]&0x3f)
	}
	for i, other := range [][]byte{b[446:462], b[478:494], b[494:510]} {
		if !bytes.Equal(other, make([]byte, 16)) {
			t.Errorf("partition entry %d is not empty", []int{1, 3, 4}[i])
		}
	}
	start, count = binary.LittleEndian.Uint32(e[8:]), binary.LittleEndian.Uint32(e[12:])
	if int64(start+count)*512 != int64(len(b)) {
		t.Errorf("partition %d+%d sectors, file %d bytes", start, count, len(b))
	}
	img, err := rofs.Parse(b[start*512 : (start+count)*512])
	if err != nil {
		t.Fatal(err)
	}
	tree, err = img.Tree()
	if err != nil {
		t.Fatal(err)
	}
	return start, count, tree
}

func TestBuild(t *testing.T) {
	ctx := context.Background()
	k := testKernel(t, false)
	bundle := testBundle(t)
	in := testInput(t, bundle, k)
	out := t.TempDir()
	img, err := Build(ctx, in, out)
	if err != nil {
		t.Fatal(err)
	}
	if img.Base != "osv" || img.Format != FormatDirect || img.Kernel != KernelFile || img.RootDisk != RootFile || img.Disk != "" || img.Console == nil || img.KernelVersion != "v1.2.3-4-gabc" || img.MemoryMiB != DefaultMemoryMiB {
		t.Errorf("image %+v", img)
	}
	wantCmd := "--console=serial --rootfs=rofs --verbose --power-off-on-abort --ip=eth0,10.0.2.15,255.255.255.0 --defaultgw=10.0.2.2 --nameserver=10.0.2.3 --env=GREETING=hi --env=HOME=/ --env=PATH=/usr/local/bin:/usr/bin:/bin --cwd=/app /.unikfile/ready 8080 &! /app/main 8080"
	if img.Cmdline != wantCmd {
		t.Errorf("cmdline\n%s\nwant\n%s", img.Cmdline, wantCmd)
	}
	read, err := pack.ReadImage(out)
	if err != nil || read.Digest != img.Digest {
		t.Errorf("image.json: %+v, %v", read, err)
	}
	kb, _ := os.ReadFile(filepath.Join(out, KernelFile))
	lb, _ := os.ReadFile(k.Loader)
	if !bytes.Equal(kb, lb) {
		t.Error("the image's kernel is not a copy of the kernel")
	}
	start, _, tree := readRoot(t, filepath.Join(out, RootFile))
	if start != 1 {
		t.Errorf("the ROFS starts at sector %d, want 1", start)
	}
	want := map[string]string{
		"/app/main":                         "\x7fELF program",
		"/app/data/greeting.txt":            "hello\n",
		"/lib/x86_64-linux-gnu/libfoo.so.1": "lib",
		"/usr/lib/libfoo.so.1":              "-> /lib/x86_64-linux-gnu/libfoo.so.1",
		"/libenviron.so":                    "environ",
		"/etc/fstab":                        fstab,
		"/etc/hosts":                        hosts,
		"/etc/mnttab":                       "-> /proc/mounts",
		HostCACerts:                         "CERTS",
		ReadyPath:                           "READY",
		"/dev":                              "dir", "/proc": "dir", "/sys": "dir", "/tmp": "dir",
	}
	for p, w := range want {
		n, ok := tree[p]
		var got string
		switch {
		case !ok:
			got = "(missing)"
		case n.Mode == rofs.ModeDir:
			got = "dir"
		case n.Mode == rofs.ModeSymlink:
			got = "-> " + n.Target
		default:
			got = string(n.Data)
		}
		if got != w {
			t.Errorf("%s: %q, want %q", p, got, w)
		}
	}
	if !strings.Contains(fstab, "/dev/vblk0.1 /          rofs") {
		t.Error("fstab does not mount partition #2 as /")
	}

	// The same input gives the same bytes.
	again, err := Build(ctx, in, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != img.Digest {
		t.Errorf("digest %s, then %s", img.Digest, again.Digest)
	}
	// The command line and the files are in the digest.
	in2 := in
	in2.Command.Argv = []string{"/app/main", "9090"}
	if other, err := Build(ctx, in2, t.TempDir()); err != nil || other.Digest == img.Digest {
		t.Errorf("another argument, same digest (%v)", err)
	}
	os.WriteFile(filepath.Join(bundle, "app", "data", "greeting.txt"), []byte("hallo\n"), 0o644)
	if other, err := Build(ctx, in, t.TempDir()); err != nil || other.Digest == img.Digest {
		t.Errorf("another file, same digest (%v)", err)
	}
}

func TestBuildRefuses(t *testing.T) {
	ctx := context.Background()
	k := testKernel(t, false)
	for _, tc := range []struct {
		name  string
		setup func(bundle string, in *Input)
		want  string
	}{
		{"a bundle with its own fstab", func(b string, in *Input) {
			os.MkdirAll(filepath.Join(b, "etc"), 0o755)
			os.WriteFile(filepath.Join(b, "etc", "fstab"), nil, 0o644)
		}, "the app bundle has /etc/fstab, which the osv base writes"},
		{"a bundle with a file where a mount point goes", func(b string, in *Input) {
			os.WriteFile(filepath.Join(b, "tmp"), nil, 0o644)
		}, "mount point /tmp"},
		{"a missing program", func(b string, in *Input) { in.Command.Argv = []string{"/app/missing"} }, "the program /app/missing is not a file in the image"},
		{"too little memory", func(b string, in *Input) {
			os.WriteFile(filepath.Join(b, "app", "big"), make([]byte, 3<<20), 0o644)
			in.MemoryMiB = 66
		}, "memory 66 MiB is too small for a root file system of 3 MiB"},
		{"no kernel", func(b string, in *Input) { in.Kernel = nil }, "no kernel"},
		{"ports without the readiness helper", func(b string, in *Input) { in.ReadyHelper = "" }, "needs the readiness helper"},
		{"a bundle with /.unikfile", func(b string, in *Input) {
			os.MkdirAll(filepath.Join(b, ".unikfile"), 0o755)
		}, "the app bundle has /.unikfile"},
		{"a literal $", func(b string, in *Input) { in.Command.Argv = append(in.Command.Argv, "$x") }, "literal $"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testBundle(t)
			in := testInput(t, b, k)
			tc.setup(b, &in)
			out := t.TempDir()
			_, err := Build(ctx, in, out)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "package api (osv): ") {
				t.Errorf("error %v, want %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(out); len(entries) != 0 {
				t.Errorf("a failed build left %d files", len(entries))
			}
		})
	}
	// A bundle's /etc/hosts is replaced, as on linux.
	b := testBundle(t)
	os.MkdirAll(filepath.Join(b, "etc"), 0o755)
	os.WriteFile(filepath.Join(b, "etc", "hosts"), []byte("mine"), 0o644)
	out := t.TempDir()
	if _, err := Build(ctx, testInput(t, b, k), out); err != nil {
		t.Fatal(err)
	}
	if _, _, tree := readRoot(t, filepath.Join(out, RootFile)); string(tree["/etc/hosts"].Data) != hosts {
		t.Errorf("/etc/hosts is %q", tree["/etc/hosts"].Data)
	}
}

func TestMemory(t *testing.T) {
	for _, tc := range []struct {
		asked int
		size  int64
		want  int
	}{
		{0, 1 << 20, DefaultMemoryMiB},
		{0, 100 << 20, 192},
		{96, 10 << 20, 96},
	} {
		if got, err := memory(tc.asked, tc.size); err != nil || got != tc.want {
			t.Errorf("memory(%d, %d MiB) = %d, %v; want %d", tc.asked, tc.size>>20, got, err, tc.want)
		}
	}
}

func TestBuildDisk(t *testing.T) {
	ctx := context.Background()
	k := testKernel(t, true)
	src := t.TempDir()
	img, err := Build(ctx, testInput(t, testBundle(t), k), src)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	d, err := BuildDisk(ctx, DiskInput{ImageDir: src, Image: img, Kernel: k}, out)
	if err != nil {
		t.Fatal(err)
	}
	if d.Format != disk.FormatRaw || d.Disk != disk.File || d.Boot != pack.BootBIOS || d.Source != img.Digest || d.Base != "osv" || !d.Deterministic {
		t.Errorf("disk image %+v", d)
	}
	b, _ := os.ReadFile(filepath.Join(out, disk.File))
	boot, _ := os.ReadFile(k.Boot)
	if int64(len(b)) != d.Size || len(b)%(1<<20) != 0 {
		t.Errorf("disk is %d bytes (image says %d), want whole MiB", len(b), d.Size)
	}
	// loader.img first, but for the partition table and the command line.
	if !bytes.Equal(b[:446], boot[:446]) || !bytes.Equal(b[1024*32:len(boot)], boot[1024*32:]) {
		t.Error("the disk does not start with loader.img")
	}
	line := b[512 : 512+bytes.IndexByte(b[512:], 0)]
	wantLine, _ := replaceNet(img.Cmdline, DHCP)
	if string(line) != wantLine || strings.Contains(wantLine, "--ip=") || d.Cmdline != wantLine {
		t.Errorf("command line at byte 512: %q, want %q (DHCP)", line, wantLine)
	}
	e := b[446+16 : 446+32]
	start := binary.LittleEndian.Uint32(e[8:]) * 512
	count := binary.LittleEndian.Uint32(e[12:]) * 512
	if start != 2<<20 || e[4] != 0x83 {
		t.Errorf("partition #2 starts at byte %d (type %#x), want 2 MiB", start, e[4])
	}
	root, _ := os.ReadFile(filepath.Join(src, RootFile))
	if !bytes.Equal(b[start:start+count], root[512:]) {
		t.Error("the disk's partition #2 is not the image's ROFS")
	}
	again, err := BuildDisk(ctx, DiskInput{ImageDir: src, Image: img, Kernel: k}, t.TempDir())
	if err != nil || again.Digest != d.Digest {
		t.Errorf("the same image gave another disk: %v", err)
	}

	if _, err := BuildDisk(ctx, DiskInput{ImageDir: src, Image: img, Kernel: k, Boot: pack.BootUEFI}, t.TempDir()); err == nil || !strings.Contains(err.Error(), "boot by BIOS only") {
		t.Errorf("UEFI: %v", err)
	}
	noBoot := testKernel(t, false)
	if _, err := BuildDisk(ctx, DiskInput{ImageDir: src, Image: img, Kernel: noBoot}, t.TempDir()); err == nil || !strings.Contains(err.Error(), "has no loader.img") {
		t.Errorf("no loader.img: %v", err)
	}
}
