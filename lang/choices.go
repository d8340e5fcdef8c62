package lang

// The values the Unikfile's enumerated attributes accept. The stages keep
// their own registries of what is implemented; these tables say what the
// language knows about, so a Unikfile naming a base or provider that is not
// built yet still loads and fails later with a message from that stage.
// Adding an entry to a stage's registry means adding its name here too.
var (
	languages = []string{"go", "c", "cpp", "rust", "node", "python", "java", "elf"}
	bases     = []string{"linux", "osv", "rump", "mirage", "includeos"}
	providers = []string{"qemu", "libvirt", "vsphere", "aws", "gcp"}
	executors = []string{"local", "buildkit", "auto"}
	accels    = []string{"auto", "kvm", "tcg"}
)
