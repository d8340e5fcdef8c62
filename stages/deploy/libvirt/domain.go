package libvirt

import (
	"encoding/xml"
	"fmt"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// MetadataNS is the namespace of unikfile's element in a domain's
// <metadata>.
const MetadataNS = "https://github.com/unikfile/unikfile/xmlns/libvirt/1"

// Metadata is what a domain says about the unikfile instance it is.
type Metadata struct {
	XMLName  xml.Name `xml:"https://github.com/unikfile/unikfile/xmlns/libvirt/1 instance" json:"-"`
	ID       string   `xml:"id" json:"id"`
	Project  string   `xml:"project" json:"project"`
	Target   string   `xml:"target" json:"target"`
	App      string   `xml:"app" json:"app"`
	Image    string   `xml:"image" json:"image"`
	Settings string   `xml:"settings" json:"settings"`
	// Pool holds the domain's volumes.
	Pool string `xml:"pool" json:"pool"`
	// Client identifies the unikfile that booted it: its host name and
	// state directory. Orphans are only ever cleaned up by the same client.
	Client string `xml:"client" json:"client"`
	// Volumes are the shared image volumes the domain boots from: a
	// volume no domain names any more is deleted.
	Volumes []string `xml:"volume" json:"volumes"`
}

// parseMetadata reads unikfile's element out of a domain's XML; ok is false
// for domains that are not unikfile's.
func parseMetadata(domXML string) (Metadata, bool) {
	var d libvirtxml.Domain
	if err := d.Unmarshal(domXML); err != nil || d.Metadata == nil {
		return Metadata{}, false
	}
	dec := xml.NewDecoder(strings.NewReader("<m>" + d.Metadata.XML + "</m>"))
	for {
		tok, err := dec.Token()
		if err != nil {
			return Metadata{}, false
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Space == MetadataNS && se.Name.Local == "instance" {
			var m Metadata
			if dec.DecodeElement(&m, &se) != nil || m.ID == "" {
				return Metadata{}, false
			}
			return m, true
		}
	}
}

// userNetdev is the alias of the user-mode interface; QEMU calls its
// netdev "host" + alias, which the monitor's hostfwd commands name.
const (
	userAlias  = "ua-unikfile0"
	userNetdev = "host" + userAlias
)

// Machine is how a domain boots.
type Machine struct {
	// Type is the domain type: "kvm" or "qemu" (TCG).
	Type      string `json:"type"`
	MemoryMiB int    `json:"memory_mib"`
	CPUs      int    `json:"cpus"`
	// Kernel, Initrd and Cmdline are a direct kernel boot (paths on the
	// libvirt host); Disk a qcow2 disk instead, booted by SeaBIOS or, with
	// UEFI, OVMF.
	Kernel  string `json:"kernel,omitempty"`
	Initrd  string `json:"initrd,omitempty"`
	Cmdline string `json:"cmdline,omitempty"`
	Disk    string `json:"disk,omitempty"`
	UEFI    bool   `json:"uefi,omitempty"`
	// ConsoleLog is the file (a volume's path) virtlogd writes the serial
	// console to.
	ConsoleLog string `json:"console_log"`
	// Network is a libvirt network, or NetworkUser; Bridge a host bridge.
	Network string `json:"network,omitempty"`
	Bridge  string `json:"bridge,omitempty"`
}

// domainXML is the domain for one instance.
func domainXML(name string, m Machine, meta Metadata) (string, error) {
	metaXML, err := xml.Marshal(meta)
	if err != nil {
		return "", err
	}
	zero := uint(0)
	d := libvirtxml.Domain{
		Type:     m.Type,
		Name:     name,
		Title:    fmt.Sprintf("unikfile %s of target %s", meta.App, meta.Target),
		Metadata: &libvirtxml.DomainMetadata{XML: string(metaXML)},
		Memory:   &libvirtxml.DomainMemory{Value: uint(m.MemoryMiB), Unit: "MiB"},
		VCPU:     &libvirtxml.DomainVCPU{Value: uint(max(m.CPUs, 1))},
		OS: &libvirtxml.DomainOS{
			Type: &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"},
		},
		// Without ACPI a guest cannot be powered off gracefully, and some
		// (OSv) do not boot at all.
		Features:   &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}},
		OnPoweroff: "destroy", OnReboot: "destroy", OnCrash: "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Target: &libvirtxml.DomainSerialTarget{Port: &zero},
				Log:    &libvirtxml.DomainChardevLog{File: m.ConsoleLog, Append: "on"},
			}},
			Consoles: []libvirtxml.DomainConsole{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: &zero},
			}},
			MemBalloon: &libvirtxml.DomainMemBalloon{Model: "none"},
		},
	}
	switch {
	case m.Kernel != "":
		d.OS.Kernel, d.OS.Initrd, d.OS.Cmdline = m.Kernel, m.Initrd, m.Cmdline
	case m.Disk != "":
		d.Devices.Disks = []libvirtxml.DomainDisk{{
			Device: "disk",
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2"},
			Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: m.Disk}},
			Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
		}}
		if m.UEFI {
			// libvirt picks the host's OVMF from its firmware descriptors
			// (wherever the host's distribution puts it) and gives the
			// domain its own variable store. The unified kernel image is
			// not signed: no secure boot.
			d.OS.Type.Machine = "q35"
			d.OS.Firmware = "efi"
			d.OS.FirmwareInfo = &libvirtxml.DomainOSFirmwareInfo{Features: []libvirtxml.DomainOSFirmwareFeature{
				{Enabled: "no", Name: "secure-boot"}, {Enabled: "no", Name: "enrolled-keys"},
			}}
		}
	default:
		return "", fmt.Errorf("domain %s: neither a kernel nor a disk to boot", name)
	}
	iface := libvirtxml.DomainInterface{
		Model: &libvirtxml.DomainInterfaceModel{Type: "virtio"},
		// The NIC's iPXE option ROM only slows the boot down.
		ROM: &libvirtxml.DomainROM{Enabled: "no"},
	}
	switch {
	case m.Bridge != "":
		iface.Source = &libvirtxml.DomainInterfaceSource{Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: m.Bridge}}
	case m.Network == NetworkUser:
		iface.Source = &libvirtxml.DomainInterfaceSource{User: &libvirtxml.DomainInterfaceSourceUser{}}
		iface.Alias = &libvirtxml.DomainAlias{Name: userAlias}
	default:
		iface.Source = &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: m.Network}}
	}
	d.Devices.Interfaces = []libvirtxml.DomainInterface{iface}
	return d.Marshal()
}
