package compile

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/unikfile/unikfile/internal/run"
	"github.com/unikfile/unikfile/internal/testenv"
	"github.com/unikfile/unikfile/lang"
)

// toolchainSetting stands for the mirage block's settings (package
// stages/package/mirage cannot be imported here).
type toolchainSetting string

func (s toolchainSetting) MirageToolchain() string { return string(s) }

// mirageApp is a copy of one of the fixture's apps, on base mirage with
// the fixture's toolchain.
func mirageApp(t *testing.T, name string) *lang.App {
	t.Helper()
	tc := testenv.MirageToolchain(t)
	dir := t.TempDir()
	if err := copyTree(testenv.MirageFixtureApp(t, name), dir, nil); err != nil {
		t.Fatal(err)
	}
	return &lang.App{Name: "web", Source: dir, Language: "ocaml", Base: "mirage", BaseSettings: toolchainSetting(tc)}
}

func TestMirageBuildsAVirtioUnikernelCachedAndRebuiltOnEdit(t *testing.T) {
	app := mirageApp(t, "tcp-echo")
	cacheDir := t.TempDir()
	r, err := compileWith(t, app, cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	if r.Cached || r.Manifest.Program != "/unikernel.virtio" {
		t.Fatalf("first build: cached %v, program %s", r.Cached, r.Manifest.Program)
	}
	root := filepath.Join(r.Dir, RootfsDir)
	b, err := os.ReadFile(filepath.Join(root, "unikernel.virtio"))
	if err != nil || !bytes.HasPrefix(b, []byte("\x7fELF")) {
		t.Fatalf("the bundle's unikernel is not an ELF file (%v)", err)
	}
	u, err := ReadMirageUnikernel(root)
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "tcpecho" || u.Target != "virtio" || u.Mirage != "3.10.8" || u.Kernel != "/unikernel.virtio" {
		t.Errorf("unikernel %+v", u)
	}
	for _, k := range []string{"ipv4", "ipv4-gateway", "http-port", "port", "logs"} {
		if !u.HasKey(k) {
			t.Errorf("runtime keys %v lack %s", u.Keys, k)
		}
	}
	if u.HasKey("dhcp") || u.HasKey("target") {
		t.Errorf("runtime keys %v hold configure-time keys", u.Keys)
	}
	if !slices.Equal(u.Devices, []Solo5Device{{Name: "service", Type: "NET_BASIC"}}) {
		t.Errorf("devices %v, want the one network device service", u.Devices)
	}
	// The source is untouched: the build ran in a copy.
	if _, err := os.Stat(filepath.Join(app.Source, "_build")); err == nil {
		t.Error("mirage wrote _build into the app's source")
	}

	again, err := compileWith(t, app, cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Manifest.Key != r.Manifest.Key {
		t.Fatalf("an unchanged source rebuilt (cached %v)", again.Cached)
	}

	// A stale build in the source is not copied into the next one.
	if err := os.MkdirAll(filepath.Join(app.Source, "_build"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(app.Source, "_build", "junk"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(app.Source, "old.virtio"), []byte("stale"), 0o644)
	ml := filepath.Join(app.Source, "unikernel.ml")
	src, _ := os.ReadFile(ml)
	edited := bytes.Replace(src, []byte("hello from a MirageOS unikernel"), []byte("hello again from MirageOS"), 1)
	if bytes.Equal(src, edited) {
		t.Fatal("the fixture's unikernel.ml has no greeting to edit")
	}
	os.WriteFile(ml, edited, 0o644)
	r2, err := compileWith(t, app, cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Cached || r2.Manifest.Key == r.Manifest.Key {
		t.Fatal("an edit of unikernel.ml did not rebuild")
	}
	b2, _ := os.ReadFile(filepath.Join(r2.Dir, RootfsDir, "unikernel.virtio"))
	if !bytes.Contains(b2, []byte("hello again from MirageOS")) || bytes.Contains(b2, []byte("hello from a MirageOS unikernel")) {
		t.Error("the rebuilt unikernel does not hold the edited greeting")
	}

	// A compile error shows OCaml's message with its file and line.
	os.WriteFile(ml, bytes.Replace(src, []byte("T.close flow"), []byte("T.closee flow"), 1), 0o644)
	_, err = compileWith(t, app, cacheDir)
	if err == nil {
		t.Fatal("a type error compiled")
	}
	for _, want := range []string{`File "unikernel.ml", line`, "Unbound value T.closee", "mirage build of app web"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "missing-mli") {
		t.Errorf("error quotes OCaml's missing-interface warnings:\n%v", err)
	}
}

func TestMirageToolchainFromEnvironmentSharesTheBuildWhichIsReproducible(t *testing.T) {
	app := mirageApp(t, "hello")
	tc := string(app.BaseSettings.(toolchainSetting))
	cacheDir := t.TempDir()
	r, err := compileWith(t, app, cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	// The same toolchain named by the environment variable: the same key.
	fromEnv := *app
	fromEnv.BaseSettings = nil
	t.Setenv(MirageToolchainEnv, tc)
	r2, err := compileWith(t, &fromEnv, cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	if !r2.Cached || r2.Manifest.Key != r.Manifest.Key {
		t.Errorf("the toolchain through %s is another key", MirageToolchainEnv)
	}
	// Another machine's empty cache: the same bytes.
	r3, err := compileWith(t, &fromEnv, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(filepath.Join(r.Dir, RootfsDir, "unikernel.virtio"))
	b3, _ := os.ReadFile(filepath.Join(r3.Dir, RootfsDir, "unikernel.virtio"))
	if r3.Cached || len(b1) == 0 || !bytes.Equal(b1, b3) {
		t.Errorf("two builds of the same source differ (%d and %d bytes)", len(b1), len(b3))
	}
	u, err := ReadMirageUnikernel(filepath.Join(r.Dir, RootfsDir))
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "hello" || len(u.Devices) != 0 || u.HasKey("ipv4") {
		t.Errorf("hello: %+v, want no devices and no network keys", u)
	}

	// A changed toolchain is another key (checked on a copy: the
	// extracted fixture is shared by every test process).
	cp := filepath.Join(t.TempDir(), "tc")
	if out, err := exec.Command("cp", "-a", tc, cp).CombinedOutput(); err != nil {
		t.Fatalf("copy the toolchain: %v\n%s", err, out)
	}
	copied := *app
	copied.BaseSettings = toolchainSetting(cp)
	l := ocamlLang{}
	id1, err := l.Toolchain(t.Context(), &copied)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(cp, "virtio", "lib", "mirage", "META"), later, later); err != nil {
		t.Fatal(err)
	}
	id2, err := l.Toolchain(t.Context(), &copied)
	if err != nil {
		t.Fatal(err)
	}
	if id1 == id2 {
		t.Error("a file of the toolchain changed and its identity did not")
	}
}

func TestMirageToolchainMissingOrWrong(t *testing.T) {
	app := &lang.App{Name: "web", Source: t.TempDir(), Language: "ocaml", Base: "mirage"}
	os.WriteFile(filepath.Join(app.Source, "config.ml"), []byte("open Mirage\n"), 0o644)
	t.Setenv(MirageToolchainEnv, "")
	t.Setenv("PATH", t.TempDir())
	_, err := compileWith(t, app, t.TempDir())
	var nf *run.NotFoundError
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "opam install") || !strings.Contains(err.Error(), MirageToolchainEnv) {
		t.Errorf("no toolchain: %v, want a not-found error saying how to get one", err)
	}

	empty := t.TempDir()
	app.BaseSettings = toolchainSetting(empty)
	_, err = compileWith(t, app, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "bin/mirage") || !strings.Contains(err.Error(), "opam var prefix") {
		t.Errorf("a folder without mirage: %v", err)
	}

	// ocaml on another base, and other languages on mirage.
	if err := CheckBase("linux", "ocaml"); err == nil || !strings.Contains(err.Error(), `base = "mirage"`) {
		t.Errorf("ocaml on linux: %v", err)
	}
	if err := CheckBase("mirage", "go"); err == nil || !strings.Contains(err.Error(), "ocaml") {
		t.Errorf("go on mirage: %v", err)
	}
	if got := LanguagesFor("mirage"); !slices.Equal(got, []string{"ocaml"}) {
		t.Errorf("languages on mirage: %v", got)
	}
	if got := LanguagesFor("linux"); slices.Contains(got, "ocaml") || !slices.Contains(got, "go") {
		t.Errorf("languages on linux: %v", got)
	}
}

func TestRuntimeKeysOfKeyGen(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "key_gen.ml"), []byte(`let http_port =Functoria_runtime.Key.create
  (Functoria_runtime.Arg.opt Cmdliner.Arg.int (80) (Cmdliner.Arg.info
   ~docs:"APPLICATION OPTIONS" ?docv:(None) ?doc:(Some "HTTP/1.0 port.  ")
   ?env:(None) ["http-port"]))
let logs =Functoria_runtime.Key.create
  (Functoria_runtime.Arg.opt (Cmdliner.Arg.list Mirage_runtime.Arg.log_threshold) [] (Cmdliner.Arg.info
   ~docs:"UNIKERNEL PARAMETERS" ?docv:(Some "LEVEL")
   ?doc:(Some "Be more or less verbose. $(docv) must be of the form\n$(b,*:info,foo:debug).  ")
   ?env:(Some (Cmdliner.Arg.env_var "MIRAGE_LOGS")) ["l"; "logs"]))
let warn_error () = false
let runtime_keys = List.combine [http_port_t; logs_t] ["http_port"; "logs"]
`), 0o644)
	keys, err := runtimeKeys(dir)
	if err != nil || !slices.Equal(keys, []string{"http-port", "l", "logs"}) {
		t.Errorf("keys %v, %v; want the options http-port, l, logs", keys, err)
	}
	os.WriteFile(filepath.Join(dir, "key_gen.ml"), []byte("let x = 1\n"), 0o644)
	if _, err := runtimeKeys(dir); err == nil {
		t.Error("a key_gen.ml without runtime_keys was read")
	}
}
