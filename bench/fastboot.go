package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/unikfile/unikfile/stages/package/linux/kbuild"
)

var (
	fastbootBoots = flag.Int("fastboot-runtime-boots", 3, "boots per runtime and kernel in the fastboot suite's before/after table (as many `up` boots, and as many plain boots for where the time goes)")
	fastbootParts = flag.String("fastboot-parts", "hello,watch,runtimes", "which parts of the fastboot suite run: hello (boot to first response against plain qemu), watch (edit to new version), runtimes (Python, Node.js and Java before and after); the kernel table always")
)

// fastbootPart says whether the fastboot suite runs part.
func fastbootPart(part string) bool {
	for _, p := range strings.Split(*fastbootParts, ",") {
		if strings.TrimSpace(p) == part {
			return true
		}
	}
	return false
}

// benchFastboot measures the minimal kernel (linux { kernel = "minimal" },
// here through UNIKFILE_KERNEL=minimal) against its goals, in one run:
//   - examples/hello boot to first response with `unikfile up` against a
//     plain qemu command line booting the same kernel, initramfs and
//     command line on the same machine type;
//   - edit to new version under `unikfile watch` with that kernel;
//   - the kernel's size, and how long building it took (cold, and the
//     incremental build of a second configuration in the same tree), as
//     kernel.json recorded it: the kernels are the machine's (built once
//     per machine, as by scripts/install-deps --test), not built again
//     for each run;
//   - Python, Node.js and Java from `up` of a built image to the first
//     answer with Debian's cloud kernel (before) and the minimal kernel
//     (after), and where the time goes with each (console timestamps of
//     a plain boot with the init's verbose lines).
func benchFastboot() error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "unikfile-bench-fastboot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// The machine's minimal kernels, shared with `unikfile kernel build`
	// and the tests, whatever cache the runs below use.
	if os.Getenv(kbuild.DirEnv) == "" {
		os.Setenv(kbuild.DirEnv, kbuild.Dir(userCacheDir(), os.Environ()))
	}
	debian, err := findKernel()
	if err != nil {
		return err
	}
	bin := filepath.Join(tmp, "unikfile")
	if err := buildUnikfile(root, bin); err != nil {
		return err
	}
	e := &env{tmp: tmp, bin: bin, project: filepath.Join(tmp, "hello"), cache: filepath.Join(tmp, "cache"),
		state: filepath.Join(tmp, "state"), kernel: "minimal", port: freePort()}
	if err := copyDir(filepath.Join(root, "examples", "hello"), e.project); err != nil {
		return err
	}
	fixAccel(e.project)
	fmt.Printf("unikfile bench -suite fastboot: %s, %d CPUs, load average %s, accel %s, %s\n\n", runtime.Version(), runtime.NumCPU(), loadavg(), *accel, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	defer e.unikfile("down")

	// The kernels: what the builds took (cached kernels say how long they
	// took when they were built) and their sizes. The table lists every
	// minimal kernel of the machine: those of the tests (scripts/install-deps
	// --test builds a PC kernel too) and of the runtimes below.
	start := time.Now()
	if err := e.unikfile("kernel", "build"); err != nil {
		return err
	}
	fmt.Printf("%-40s %10s\n", "unikfile kernel build (examples/hello)", round(time.Since(start)))
	if err := kernelTable(e); err != nil {
		return err
	}

	// 1. Boot to first response.
	var upBoot, plainBoot []time.Duration
	for i := 0; fastbootPart("hello") && i < *boots; i++ {
		d, err := timeIt(func() error {
			if err := e.unikfile("up"); err != nil {
				return err
			}
			return waitHTTP(e.port, time.Minute)
		})
		if err != nil {
			return err
		}
		upBoot = append(upBoot, d)
		pl, err := e.plainFromInstance()
		if err != nil {
			return err
		}
		if err := e.unikfile("down"); err != nil {
			return err
		}
		d, _, err = pl.boot(false)
		if err != nil {
			return err
		}
		plainBoot = append(plainBoot, d)
	}
	if len(upBoot) > 0 {
		report("boot to first response (minimal kernel)", median(upBoot), "plain qemu, same machine and files", median(plainBoot))
		report("  same, fastest of each side", minimum(upBoot), "plain qemu, same machine and files", minimum(plainBoot))
		fmt.Printf("  goal: median <= 1.0s and <= 1.10x\n\n")
	}

	// 2. Edit to new version under watch with the minimal kernel.
	if fastbootPart("watch") {
		if err := benchWatch(e); err != nil {
			return err
		}
		fmt.Printf("  goal: median <= 2.0s\n\n")
	}

	// 3. Interpreted runtimes, before and after.
	if fastbootPart("runtimes") {
		if err := benchRuntimes(root, tmp, bin, e.cache, debian); err != nil {
			return err
		}
	}
	return nil
}

// benchRuntimes is the fastboot suite's third part: Python, Node.js and
// Java from `up` of a built image to the first answer, with Debian's
// kernel (before) and the minimal one (after), and where the time goes:
// the medians of as many plain boots of the same image with the init's
// verbose lines, in wall time and in the CPU time QEMU used (its user +
// system time: it leaves out the time QEMU waited for a CPU, though not
// the slowdown of sharing the cores with other work, so on a shared
// machine it varies less than the wall time but still varies).
func benchRuntimes(root, tmp, bin, cache, debian string) error {
	fmt.Printf("runtimes, up of a built image to the first answer (median of %d), and where plain boots of the same image spend it (medians of %d):\n", *fastbootBoots, *fastbootBoots)
	fmt.Printf("%-7s %-8s %9s   %s\n", "runtime", "kernel", "up->HTTP", "plain boot: QEMU+kernel | init setup | app start | first answer  (plain; QEMU CPU: to app start | app start)")
	for _, l := range []string{"python", "node", "java"} {
		for _, k := range []struct{ name, kernel string }{{"debian", debian}, {"minimal", "minimal"}} {
			le := &env{tmp: tmp, bin: bin, project: filepath.Join(tmp, l+"-"+k.name), cache: cache,
				state: filepath.Join(tmp, "state-"+l+"-"+k.name), kernel: k.kernel, port: freePort()}
			if err := copyDir(filepath.Join(root, "examples", l), le.project); err != nil {
				return err
			}
			fixAccel(le.project)
			if err := le.unikfile("build"); err != nil {
				return err
			}
			// Each up is followed by a plain boot, so that a slow minute of
			// the machine falls on both sides.
			var ups []time.Duration
			var tls []timeline
			var pl *plainRun
			for i := 0; i < *fastbootBoots; i++ {
				d, err := timeIt(func() error {
					if err := le.unikfile("up", "--timeout", "10m"); err != nil {
						return err
					}
					return waitHTTP(le.port, 5*time.Minute)
				})
				if err != nil {
					return err
				}
				ups = append(ups, d)
				if pl == nil {
					if pl, err = le.plainFromInstance(); err != nil {
						return err
					}
				}
				if err := le.unikfile("down"); err != nil {
					return err
				}
				_, tl, err := pl.boot(true)
				if err != nil {
					return err
				}
				tls = append(tls, tl)
			}
			fmt.Printf("%-7s %-8s %9s   %s\n", l, k.name, round(median(ups)), medianTimeline(tls))
		}
	}
	fmt.Printf("  goals with the minimal kernel: Python and Node.js <= 3s, Java <= 6s\n")
	return nil
}

// timeline is where one plain boot spent its time: when the init's first
// line, the app's start and the ready marker appeared and when the first
// answer came, since QEMU started, in wall time and in QEMU's CPU time.
type timeline struct {
	init, started, ready, took time.Duration
	cpuStarted, cpuReady       time.Duration
}

// medianTimeline is the phases' medians, each taken on its own.
func medianTimeline(tls []timeline) string {
	phase := func(f func(t timeline) time.Duration) string {
		var ds []time.Duration
		for _, t := range tls {
			ds = append(ds, f(t))
		}
		return round(median(ds))
	}
	return fmt.Sprintf("%s | %s | %s | %s  (plain: %s; cpu: %s | %s)",
		phase(func(t timeline) time.Duration { return t.init }),
		phase(func(t timeline) time.Duration { return t.started - t.init }),
		phase(func(t timeline) time.Duration { return t.ready - t.started }),
		phase(func(t timeline) time.Duration { return t.took - t.ready }),
		phase(func(t timeline) time.Duration { return t.took }),
		phase(func(t timeline) time.Duration { return t.cpuStarted }),
		phase(func(t timeline) time.Duration { return t.cpuReady - t.cpuStarted }))
}

// processCPU is the user + system time a process has used so far (all
// its threads), from /proc/PID/stat; 0 when it cannot be read.
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0
	}
	f := strings.Fields(s[i+2:]) // from the state, the third field
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ, 100 on Linux/amd64
	return time.Duration(utime+stime) * time.Second / ticks
}

// fixAccel sets the example's accelerator, so that both sides of a
// comparison run the same way.
func fixAccel(project string) {
	uf, _ := os.ReadFile(filepath.Join(project, "Unikfile"))
	uf = bytes.Replace(uf, []byte("qemu {"), []byte("qemu {\n    accel = \""+*accel+"\""), 1)
	os.WriteFile(filepath.Join(project, "Unikfile"), uf, 0o644)
}

// kernelTable prints the built kernels: size, loaded size, build time.
func kernelTable(e *env) error {
	cmd := exec.Command(e.bin, "kernel", "ls", "--json")
	cmd.Env = append(os.Environ(), "UNIKFILE_CACHE_DIR="+e.cache)
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("kernel ls: %v", err)
	}
	var ks []struct {
		Kind     string
		Path     string
		Features []string
	}
	if err := json.Unmarshal(out, &ks); err != nil {
		return err
	}
	fmt.Printf("%-46s %10s %10s %14s\n", "minimal kernels (features beyond the base)", "file", "loaded", "built in")
	for _, k := range ks {
		if k.Kind != "minimal" {
			continue
		}
		fi, err := os.Stat(k.Path)
		if err != nil {
			return err
		}
		loaded := "-"
		if f, err := elf.Open(k.Path); err == nil {
			var n uint64
			for _, p := range f.Progs {
				if p.Type == elf.PT_LOAD {
					n += p.Filesz
				}
			}
			f.Close()
			loaded = mib(int64(n))
		}
		var info struct {
			BuildSeconds float64 `json:"build_seconds"`
			Cold         bool    `json:"cold"`
		}
		if b, err := os.ReadFile(filepath.Join(filepath.Dir(k.Path), "kernel.json")); err == nil {
			json.Unmarshal(b, &info)
		}
		how := "incremental"
		if info.Cold {
			how = "cold"
		}
		var distinct []string
		for _, f := range k.Features {
			switch f {
			case "base", "console", "initramfs", "net", "virtio-net", "power-button":
			default:
				distinct = append(distinct, f)
			}
		}
		fmt.Printf("%-46s %10s %10s %9s %s\n", strings.Join(distinct, " "), mib(fi.Size()), loaded, round(time.Duration(info.BuildSeconds*float64(time.Second))), how)
	}
	fmt.Printf("  goal: <= 4 MiB; \"loaded\" is what QEMU copies in (a vmlinux built before pvh/2 also holds 2 MiB alignment fill)\n\n")
	return nil
}

// plainRun is a QEMU command line as a user would write it for an
// image: the instance's machine, kernel, initrd, root disk and command
// line and CPUs, user networking with one forward, the console to a file.
type plainRun struct {
	e   *env
	cfg struct {
		Machine   string `json:"machine"`
		MemoryMiB int    `json:"memory_mib"`
		CPUs      int    `json:"cpus"`
		Kernel    string `json:"kernel"`
		Initrd    string `json:"initrd"`
		Cmdline   string `json:"cmdline"`
		RootDisk  string `json:"root_disk"`
	}
}

// plainFromInstance reads the running instance's QEMU configuration.
func (e *env) plainFromInstance() (*plainRun, error) {
	cmd := exec.Command(e.bin, "ps", "--json")
	cmd.Dir = e.project
	cmd.Env = append(os.Environ(), "UNIKFILE_CACHE_DIR="+e.cache, "UNIKFILE_STATE_DIR="+e.state)
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ps --json: %v", err)
	}
	var insts []struct {
		Config json.RawMessage `json:"config"`
	}
	if err := json.Unmarshal(out, &insts); err != nil || len(insts) != 1 {
		return nil, fmt.Errorf("ps --json: %v, %d instances", err, len(insts))
	}
	pb := &plainRun{e: e}
	if err := json.Unmarshal(insts[0].Config, &pb.cfg); err != nil {
		return nil, err
	}
	return pb, nil
}

// boot runs the plain command line to the first HTTP answer. With
// withTimeline the init's verbose lines are on, and the console is read as
// it is written to say where the time went.
func (pb *plainRun) boot(withTimeline bool) (time.Duration, timeline, error) {
	port := freePort()
	console := filepath.Join(pb.e.tmp, "plain-console-"+strconv.Itoa(port))
	cmdline := pb.cfg.Cmdline
	if withTimeline {
		cmdline += " unikfile.verbose"
	}
	machine := pb.cfg.Machine
	nic := "virtio-net-pci,netdev=n0,romfile="
	blk := "virtio-blk-pci"
	if machine == "microvm" {
		machine, nic, blk = "microvm,x-option-roms=off,isa-serial=on", "virtio-net-device,netdev=n0", "virtio-blk-device"
	}
	mem := strconv.Itoa(max(pb.cfg.MemoryMiB, 256))
	args := []string{"-M", machine, "-accel", *accel, "-cpu", "max", "-m", mem, "-smp", strconv.Itoa(max(pb.cfg.CPUs, 1))}
	if *accel == "tcg" {
		// The guest memory unikfile gives a TCG guest (see qemu/config.go),
		// so that the comparison is of the same machine.
		args = append(args, "-object", "memory-backend-memfd,id=ram0,size="+mem+"M", "-M", machine+",memory-backend=ram0")
	}
	args = append(args, "-nodefaults", "-no-user-config", "-display", "none", "-serial", "file:"+console,
		"-kernel", pb.cfg.Kernel, "-initrd", pb.cfg.Initrd, "-append", cmdline)
	if pb.cfg.RootDisk != "" {
		args = append(args, "-drive", "file="+pb.cfg.RootDisk+",if=none,id=rootfs,format=raw,readonly=on", "-device", blk+",drive=rootfs")
	}
	args = append(args, "-netdev", "user,id=n0,hostfwd=tcp:127.0.0.1:"+strconv.Itoa(port)+"-:8080", "-device", nic)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, timeline{}, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	marks := map[string]time.Duration{}
	stop := make(chan struct{})
	done := make(chan struct{})
	if withTimeline {
		go func() {
			defer close(done)
			watchConsole(console, start, cmd.Process.Pid, marks, stop)
		}()
	} else {
		close(done)
	}
	err := waitHTTP(port, 4*time.Minute)
	took := time.Since(start)
	close(stop)
	<-done
	if err != nil {
		return 0, timeline{}, fmt.Errorf("plain qemu %s: %w", strings.Join(args, " "), err)
	}
	return took, timeline{init: marks["init"], started: marks["started"], ready: marks["ready"], took: took,
		cpuStarted: marks["cpu started"], cpuReady: marks["cpu ready"]}, nil
}

// watchConsole records when the init's first line, the app's start and
// the ready marker appear in the console file, and QEMU's (pid's) CPU
// time at the app's start and at the marker.
func watchConsole(path string, start time.Time, pid int, marks map[string]time.Duration, stop <-chan struct{}) {
	var off int64
	var partial string
	for {
		select {
		case <-stop:
			return
		case <-time.After(5 * time.Millisecond):
		}
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		f.Seek(off, 0)
		sc := bufio.NewReader(f)
		for {
			line, err := sc.ReadString('\n')
			off += int64(len(line))
			if err != nil {
				partial += line
				break
			}
			line, partial = partial+line, ""
			now := time.Since(start)
			switch {
			case strings.HasPrefix(line, "unikfile-init: ["):
				if _, ok := marks["init"]; !ok {
					marks["init"] = now
				}
				if strings.Contains(line, "] started ") {
					marks["started"] = now
					marks["cpu started"] = processCPU(pid)
				}
			case strings.HasPrefix(line, "unikfile-init: ready"):
				marks["ready"] = now
				marks["cpu ready"] = processCPU(pid)
			}
		}
		f.Close()
	}
}
