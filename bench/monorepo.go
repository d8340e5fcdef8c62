package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func runMonorepo() error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	k, err := findKernel()
	if err != nil {
		return err
	}
	return monorepoBench(root, k)
}

// monorepoBench generates a tree of *apps Go apps (two per Unikfile) and
// measures `unikfile build ./...` against make running a Makefile with
// the same dependency structure (each app's sources -> its binary; binary,
// guest init and kernel -> its image), whose packaging step is the same
// library call (bench/packer): a cold build at -j1 and -j2, the no-op
// build, and the build after one app changed.
func monorepoBench(root, kernel string) error {
	if _, err := exec.LookPath("make"); err != nil {
		return fmt.Errorf("make is missing: apt-get install make (scripts/install-deps installs it)")
	}
	tmp, err := os.MkdirTemp("", "unikfile-bench-mono-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin, packer := filepath.Join(tmp, "unikfile"), filepath.Join(tmp, "packer")
	if err := buildUnikfile(root, bin); err != nil {
		return err
	}
	if b, err := exec.Command("go", "build", "-o", packer, filepath.Join(root, "bench", "packer")).CombinedOutput(); err != nil {
		return fmt.Errorf("build bench/packer: %v\n%s", err, b)
	}
	tree := filepath.Join(tmp, "mono")
	changed, err := writeMonorepo(tree, *apps, packer, kernel)
	if err != nil {
		return err
	}
	cacheN := 0
	cacheDir := ""
	freshCache := func() {
		if cacheDir != "" {
			os.RemoveAll(cacheDir)
		}
		cacheN++
		cacheDir = filepath.Join(tmp, "cache-"+strconv.Itoa(cacheN))
	}
	var stdout bytes.Buffer   // the last unikfile run's standard output
	var lastCPU time.Duration // user+sys time of the last unikfile or make process (and its children)
	unikfile := func(args ...string) error {
		cmd := exec.Command(bin, args...)
		cmd.Dir = tree
		cmd.Env = append(os.Environ(), "UNIKFILE_CACHE_DIR="+cacheDir, "UNIKFILE_STATE_DIR="+filepath.Join(tmp, "state"), "UNIKFILE_KERNEL="+kernel)
		if *profileDir != "" {
			cmd.Env = append(cmd.Env, "UNIKFILE_PROFILE="+*profileDir)
		}
		var stderr bytes.Buffer
		stdout.Reset()
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("unikfile %s: %v\n%s", strings.Join(args, " "), err, tail(stdout.String()+stderr.String()))
		}
		lastCPU = cpuTime(cmd.ProcessState)
		return nil
	}
	mk := func(args ...string) error {
		cmd := exec.Command("make", append([]string{"-s"}, args...)...)
		cmd.Dir = tree
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("make %s: %v\n%s", strings.Join(args, " "), err, tail(out.String()))
		}
		lastCPU = cpuTime(cmd.ProcessState)
		return nil
	}
	cleanMake := func() { os.RemoveAll(filepath.Join(tree, "out")) }

	fmt.Printf("monorepo bench: %d apps in %d Unikfiles, %s, %s, load average %s\n\n", *apps, *apps/2, runtime.Version(), machine(), loadavg())

	// Warm Go's own build cache for both sides (it is shared).
	freshCache()
	if err := unikfile("build", "./..."); err != nil {
		return err
	}

	// 1. Cold builds at -j1 and -j2, *runs times each, interleaved, so
	// that a slow minute of the machine falls on both sides; the medians
	// are compared. unikfile prints its summary as JSON, which is the
	// graph's own account of what ran when (shown for its last run).
	cold := map[string][2]time.Duration{}
	coldCPU := map[string][2]time.Duration{}
	coldRuns := map[string][][4]time.Duration{} // wall and CPU of unikfile and make
	stages := map[string][]stageTime{}
	loads := map[string]string{}
	for r := 0; r < *runs; r++ {
		for _, j := range []string{"1", "2"} {
			freshCache()
			if r == 0 {
				loads[j] = loadavg()
			}
			du, err := timeIt(func() error { return unikfile("build", "./...", "-j", j, "--summary", "json") })
			if err != nil {
				return err
			}
			cu := lastCPU
			if stages[j], err = readStages(stdout.Bytes()); err != nil {
				return err
			}
			cleanMake()
			dm, err := timeIt(func() error { return mk("-j", j) })
			if err != nil {
				return err
			}
			coldRuns[j] = append(coldRuns[j], [4]time.Duration{du, dm, cu, lastCPU})
		}
	}
	for _, j := range []string{"1", "2"} {
		var u, m, cu, cm []time.Duration
		for _, x := range coldRuns[j] {
			u, m, cu, cm = append(u, x[0]), append(m, x[1]), append(cu, x[2]), append(cm, x[3])
		}
		cold[j] = [2]time.Duration{median(u), median(m)}
		coldCPU[j] = [2]time.Duration{median(cu), median(cm)}
	}
	for _, j := range []string{"1", "2"} {
		report(fmt.Sprintf("cold build -j%s: unikfile build ./... (median of %d)", j, len(coldRuns[j])), cold[j][0], "make -j"+j, cold[j][1])
		fmt.Printf("  CPU (user+sys, with the compilers): unikfile %s, make %s, %.2fx\n", round(coldCPU[j][0]), round(coldCPU[j][1]),
			float64(coldCPU[j][0])/float64(coldCPU[j][1]))
		fmt.Printf("  each run (unikfile/make):")
		for _, x := range coldRuns[j] {
			fmt.Printf(" %s/%s", round(x[0]), round(x[1]))
		}
		fmt.Println()
		fmt.Printf("  load average before: %s; unikfile's stages in its last run (work summed over nodes, when they ran):\n", loads[j])
		for _, st := range stages[j] {
			fmt.Printf("    %-8s %4d nodes  work %9s  wait for a slot %8s per node  ran %s to %s\n", st.Stage, st.Nodes,
				round(ms(st.WallMS)), round(ms(st.QueueMS/int64(max(st.Nodes, 1)))), round(ms(st.FirstMS)), round(ms(st.LastMS)))
		}
		fmt.Println()
	}
	speedU := float64(cold["1"][0]) / float64(cold["2"][0])
	speedM := float64(cold["1"][1]) / float64(cold["2"][1])
	fmt.Printf("%-40s %9.2fx\n%-40s %9.2fx\n\n", "parallel speed-up -j1/-j2: unikfile", speedU, "  make", speedM)

	// 2. No-op: both sides are up to date after the -j2 builds. The
	// files were written seconds ago: wait out the window in which their
	// metadata is not trusted, as any later build would. One untimed
	// build each first: unikfile's -j2 build printed its summary as JSON,
	// which records no build stamp.
	time.Sleep(2500 * time.Millisecond)
	if err := unikfile("build", "./..."); err != nil {
		return err
	}
	if err := mk(); err != nil {
		return err
	}
	noopLoad := loadavg()
	var noopU, noopM, noopCPUU, noopCPUM []time.Duration
	// Ten times -runs: a no-op takes about 10 ms, in which one scheduler
	// delay moves a sample by half.
	for i := 0; i < *runs*10; i++ {
		d, err := timeIt(func() error { return unikfile("build", "./...") })
		if err != nil {
			return err
		}
		noopU, noopCPUU = append(noopU, d), append(noopCPUU, lastCPU)
		d, err = timeIt(func() error { return mk() })
		if err != nil {
			return err
		}
		noopM, noopCPUM = append(noopM, d), append(noopCPUM, lastCPU)
	}
	report("no-op: unikfile build ./...", median(noopU), "make", median(noopM))
	// CPU time depends less on other work on the machine than wall time.
	fmt.Printf("  CPU (user+sys): unikfile %s, make %s, %.2fx\n", round(median(noopCPUU)), round(median(noopCPUM)),
		float64(median(noopCPUU))/float64(median(noopCPUM)))
	fmt.Printf("  load average before: %s\n\n", noopLoad)

	// 3. One app changed (a new version of its source each time).
	oneLoad := loadavg()
	// Three times -runs: one build takes a third of a second, in which
	// one slow moment of the machine moves a run by a fifth.
	var oneU, oneM, oneCPUU, oneCPUM []time.Duration
	for i := 0; i < *runs*3; i++ {
		if err := os.WriteFile(changed, []byte(appSource(fmt.Sprintf("changed %d", i))), 0o644); err != nil {
			return err
		}
		d, err := timeIt(func() error { return unikfile("build", "./...") })
		if err != nil {
			return err
		}
		oneU, oneCPUU = append(oneU, d), append(oneCPUU, lastCPU)
		d, err = timeIt(func() error { return mk() })
		if err != nil {
			return err
		}
		oneM, oneCPUM = append(oneM, d), append(oneCPUM, lastCPU)
	}
	report("one app changed: unikfile build ./...", median(oneU), "make", median(oneM))
	fmt.Printf("  CPU (user+sys, with the compilers): unikfile %s, make %s, %.2fx\n", round(median(oneCPUU)), round(median(oneCPUM)),
		float64(median(oneCPUU))/float64(median(oneCPUM)))
	fmt.Printf("  load average before: %s\n\n", oneLoad)

	// The goals of issue 22, from this run's ratios.
	ratio := func(u, m time.Duration) float64 { return float64(u) / float64(m) }
	fmt.Println("goals:")
	goal("cold build -j2 <= 1.0x make -j2", ratio(cold["2"][0], cold["2"][1]) <= 1.0, fmt.Sprintf("%.2fx", ratio(cold["2"][0], cold["2"][1])))
	goal("parallel speed-up -j1/-j2 >= make's", speedU >= speedM, fmt.Sprintf("%.2fx against %.2fx", speedU, speedM))
	goal("no-op <= 0.5x make", ratio(median(noopU), median(noopM)) <= 0.5, fmt.Sprintf("%.2fx", ratio(median(noopU), median(noopM))))
	goal("one app changed <= 1.0x make", ratio(median(oneU), median(oneM)) <= 1.0, fmt.Sprintf("%.2fx", ratio(median(oneU), median(oneM))))
	fmt.Printf("load average at the end: %s\n", loadavg())
	return nil
}

// cpuTime is the user and system time of a finished process and of the
// children it waited for.
func cpuTime(ps *os.ProcessState) time.Duration {
	if ps == nil {
		return 0
	}
	return ps.UserTime() + ps.SystemTime()
}

func goal(name string, met bool, got string) {
	verdict := "met"
	if !met {
		verdict = "MISSED"
	}
	fmt.Printf("  %-40s %-7s (%s)\n", name, verdict, got)
}

// stageTime is one stage of `unikfile build --summary json`.
type stageTime struct {
	Stage   string `json:"stage"`
	Nodes   int    `json:"nodes"`
	WallMS  int64  `json:"wall_ms"`
	QueueMS int64  `json:"queue_ms"`
	FirstMS int64  `json:"first_start_ms"`
	LastMS  int64  `json:"last_end_ms"`
}

func readStages(summary []byte) ([]stageTime, error) {
	var s struct {
		Stages []stageTime `json:"stages"`
	}
	if err := json.Unmarshal(summary, &s); err != nil {
		return nil, fmt.Errorf("unikfile --summary json: %v\n%s", err, tail(string(summary)))
	}
	return s.Stages, nil
}

func ms(v int64) time.Duration { return time.Duration(v) * time.Millisecond }

// machine describes the CPUs and memory the run had.
func machine() string {
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %d GiB", (kb+1<<19)>>20)
		}
	}
	return fmt.Sprintf("%d CPUs (%s)%s", runtime.NumCPU(), model, mem)
}

// writeMonorepo writes n apps, two per services/sNN/Unikfile, and the
// Makefile; it returns the path of the source file the one-app-changed
// measurement edits.
func writeMonorepo(dir string, n int, packer, kernel string) (string, error) {
	var mk strings.Builder
	fmt.Fprintf(&mk, "KERNEL := %s\nPACKER := %s\nGOBUILD := CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOWORK=off go build -trimpath -buildvcs=false -ldflags='-s -w -buildid='\n\n", kernel, packer)
	var all []string
	var rules strings.Builder
	for i := 0; i < (n+1)/2; i++ {
		svc := fmt.Sprintf("services/s%02d", i)
		var uf strings.Builder
		var names []string
		for _, ab := range []string{"a", "b"} {
			if len(all) == n {
				break
			}
			name := fmt.Sprintf("%s%02d", ab, i)
			src := filepath.Join(dir, svc, ab)
			if err := os.MkdirAll(src, 0o755); err != nil {
				return "", err
			}
			os.WriteFile(filepath.Join(src, "go.mod"), []byte("module example.com/"+name+"\n\ngo 1.22\n"), 0o644)
			if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(appSource(name)), 0o644); err != nil {
				return "", err
			}
			fmt.Fprintf(&uf, "app %q {\n  source   = \"./%s\"\n  language = \"go\"\n}\n", name, ab)
			names = append(names, "app."+name)
			out := "out/" + name
			all = append(all, out+"/image/image.json")
			fmt.Fprintf(&rules, "%s/app: %s/%s/main.go %s/%s/go.mod\n\tmkdir -p $(@D) && cd %s/%s && $(GOBUILD) -o $(abspath $@) .\n", out, svc, ab, svc, ab, svc, ab)
			fmt.Fprintf(&rules, "%s/image/image.json: %s/app out/init $(KERNEL)\n\t$(PACKER) image %s %s/app out/init $(KERNEL) %s/image\n\n", out, out, name, out, out)
		}
		fmt.Fprintf(&uf, "target \"dev\" {\n  provider = \"qemu\"\n  apps     = [%s]\n}\n", strings.Join(names, ", "))
		if err := os.WriteFile(filepath.Join(dir, svc, "Unikfile"), []byte(uf.String()), 0o644); err != nil {
			return "", err
		}
	}
	fmt.Fprintf(&mk, "all: %s\n\nout/init:\n\tmkdir -p out && $(PACKER) init $@\n\n%s", strings.Join(all, " "), rules.String())
	if err := os.WriteFile(filepath.Join(dir, "Makefile"), []byte(mk.String()), 0o644); err != nil {
		return "", err
	}
	// out/ is make's, not a source of any app.
	os.WriteFile(filepath.Join(dir, ".unikignore"), []byte("out/\n"), 0o644)
	return filepath.Join(dir, "services", fmt.Sprintf("s%02d", min(17, (n-1)/2)), "a", "main.go"), nil
}

func appSource(msg string) string {
	return "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(" + strconv.Quote(msg) + ") }\n"
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}
