package vsphere

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/unikfile/unikfile/internal/atomicfile"
	"github.com/unikfile/unikfile/state"
)

// Config is how an instance was created, stored with its record (`ps
// --json` shows it) and, before anything is created, in its run directory,
// so that a record whose booter died knows what to clean up. It holds no
// credentials: later commands take them from the environment again.
type Config struct {
	// URL is the SDK endpoint, without credentials.
	URL      string `json:"url"`
	Insecure bool   `json:"insecure,omitempty"`
	// Datacenter is its inventory path, Datastore and Network their names,
	// ResourcePool and Folder inventory paths, Host the host the VM was
	// placed on by request ("" when vSphere chose).
	Datacenter   string `json:"datacenter"`
	Datastore    string `json:"datastore"`
	Network      string `json:"network"`
	ResourcePool string `json:"resource_pool"`
	Folder       string `json:"folder"`
	Host         string `json:"host,omitempty"`
	// VMName is the VM's name, "unikfile-<instance ID>"; VM its managed
	// object ID once created.
	VMName string `json:"vm_name"`
	VM     string `json:"vm,omitempty"`
	// Dir is the VM's folder on the datastore; Disk, Console and Image are
	// datastore paths ("[ds] dir/file") of the VM's disk, its serial
	// console's file, and the image disk it was copied from.
	Dir     string `json:"dir"`
	Disk    string `json:"disk"`
	Console string `json:"console"`
	Image   string `json:"image"`
	// The VM's hardware.
	GuestID   string `json:"guest_id"`
	Firmware  string `json:"firmware"`
	CPUs      int    `json:"cpus"`
	MemoryMiB int    `json:"memory_mib"`
	NIC       string `json:"nic"`
	DiskBus   string `json:"disk_controller"`
}

// ConfigFile is the config's copy in the run directory.
const ConfigFile = "config.json"

// ConsoleCopy is where Stop saves the console before the VM's files go,
// so that `unikfile logs` of a stopped instance still shows it.
const ConsoleCopy = "console.log"

// ConfigOf is the instance's config: its record's, else its run
// directory's. ok is false when neither has one (nothing was created).
func ConfigOf(inst *state.Instance) (cfg *Config, ok bool, err error) {
	raw := []byte(inst.Config)
	if len(raw) == 0 && inst.RunDir != "" {
		b, err := os.ReadFile(filepath.Join(inst.RunDir, ConfigFile))
		if os.IsNotExist(err) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("instance %s: %w", inst.ID, err)
		}
		raw = b
	}
	if len(raw) == 0 {
		return nil, false, nil
	}
	cfg = &Config{}
	if err := json.Unmarshal(raw, cfg); err != nil {
		return nil, false, fmt.Errorf("instance %s: vsphere config: %w", inst.ID, err)
	}
	return cfg, true, nil
}

// save writes the config to the run directory.
func (c *Config) save(runDir string) error {
	return atomicfile.WriteJSON(filepath.Join(runDir, ConfigFile), c, 0o600)
}
