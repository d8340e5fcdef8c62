package vsphere

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	pack "github.com/unikfile/unikfile/stages/package"
)

// The VM's hardware.
const (
	guestID = string(types.VirtualMachineGuestOsIdentifierOtherGuest64)
	nicType = "vmxnet3"
	// diskBus boots under BIOS and EFI alike; the guest itself never
	// touches the disk (the app runs from its initramfs).
	diskBus = "lsilogic-sas"
	// sioKey is the key of the SIO controller every VM is created with;
	// serial ports hang off it.
	sioKey = 400
)

// vmPrefix starts the name of every VM unikfile creates.
const vmPrefix = "unikfile-"

// Keys of the VM's extraConfig that tie it to its instance record.
const (
	keyInstance = "guestinfo.unikfile.instance"
	keyImage    = "guestinfo.unikfile.image"
	keyProject  = "guestinfo.unikfile.project"
)

// firmware is the VM's firmware for a disk's boot mode.
func firmware(boot string) string {
	if boot == pack.BootUEFI {
		return string(types.GuestOsDescriptorFirmwareTypeEfi)
	}
	return string(types.GuestOsDescriptorFirmwareTypeBios)
}

// vmSpec is the CreateVM spec: the disk copied for the instance on an
// LSI Logic SAS controller, a vmxnet3 NIC on the network, COM1 writing to
// a file in the VM's folder, the firmware the disk boots with, and
// extraConfig and an annotation that name the instance.
func vmSpec(ctx context.Context, cfg *Config, inv *inventory, capacity int64, tags map[string]string, note string) (types.VirtualMachineConfigSpec, error) {
	var devices object.VirtualDeviceList
	ctrl, err := devices.CreateSCSIController(diskBus)
	if err != nil {
		return types.VirtualMachineConfigSpec{}, err
	}
	devices = append(devices, ctrl)
	disk := devices.CreateDisk(ctrl.(types.BaseVirtualController), inv.ds.Reference(), cfg.Disk)
	disk.CapacityInKB = capacity / 1024
	disk.CapacityInBytes = capacity
	devices = append(devices, disk)

	backing, err := inv.net.EthernetCardBackingInfo(ctx)
	if err != nil {
		return types.VirtualMachineConfigSpec{}, fmt.Errorf("network %s: %w", cfg.Network, err)
	}
	nic, err := devices.CreateEthernetCard(nicType, backing)
	if err != nil {
		return types.VirtualMachineConfigSpec{}, err
	}
	nic.GetVirtualDevice().Connectable = &types.VirtualDeviceConnectInfo{StartConnected: true, AllowGuestControl: true}
	devices = append(devices, nic)

	serial := &types.VirtualSerialPort{
		YieldOnPoll: true,
		VirtualDevice: types.VirtualDevice{
			Key:           devices.NewKey(),
			ControllerKey: sioKey,
			UnitNumber:    types.NewInt32(0),
			Backing: &types.VirtualSerialPortFileBackingInfo{
				VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: cfg.Console},
			},
			Connectable: &types.VirtualDeviceConnectInfo{StartConnected: true, Connected: true},
		},
	}
	devices = append(devices, serial)

	var change []types.BaseVirtualDeviceConfigSpec
	for _, d := range devices {
		// The disk exists (copied from the image): no file operation.
		change = append(change, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: d})
	}
	var extra []types.BaseOptionValue
	for k, v := range tags {
		extra = append(extra, &types.OptionValue{Key: k, Value: v})
	}
	return types.VirtualMachineConfigSpec{
		Name:         cfg.VMName,
		GuestId:      cfg.GuestID,
		Firmware:     cfg.Firmware,
		NumCPUs:      int32(cfg.CPUs),
		MemoryMB:     int64(cfg.MemoryMiB),
		Annotation:   note,
		Files:        &types.VirtualMachineFileInfo{VmPathName: inv.ds.Path(vmDirPath(cfg) + "/" + cfg.VMName + ".vmx")},
		DeviceChange: change,
		ExtraConfig:  extra,
	}, nil
}

// vmDirPath is the VM folder's path on the datastore.
func vmDirPath(cfg *Config) string { return cfg.VMName }

// createVM creates the VM and returns it.
func createVM(ctx context.Context, inv *inventory, spec types.VirtualMachineConfigSpec) (*object.VirtualMachine, error) {
	task, err := inv.folder.CreateVM(ctx, spec, inv.pool, inv.host)
	if err != nil {
		return nil, err
	}
	res, err := task.WaitForResult(ctx, nil)
	if err != nil {
		return nil, err
	}
	return object.NewVirtualMachine(inv.folder.Client(), res.Result.(types.ManagedObjectReference)), nil
}

// findVM is the instance's VM: by its managed object ID when recorded
// (checking it still has the instance's name), else by name in its
// folder. nil, nil when it is gone.
func findVM(ctx context.Context, c *vim25.Client, cfg *Config) (*object.VirtualMachine, error) {
	if cfg.VM != "" {
		vm := object.NewVirtualMachine(c, types.ManagedObjectReference{Type: "VirtualMachine", Value: cfg.VM})
		var m mo.VirtualMachine
		err := vm.Properties(ctx, vm.Reference(), []string{"name"}, &m)
		switch {
		case err == nil && m.Name == cfg.VMName:
			return vm, nil
		case err == nil:
			return nil, nil // the ID now names another VM
		case fault.Is(err, &types.ManagedObjectNotFound{}):
			return nil, nil
		default:
			return nil, err
		}
	}
	f := find.NewFinder(c, false)
	dc, err := f.Datacenter(ctx, cfg.Datacenter)
	if err != nil {
		return nil, fmt.Errorf("datacenter %s: %w", cfg.Datacenter, err)
	}
	f.SetDatacenter(dc)
	vm, err := f.VirtualMachine(ctx, cfg.Folder+"/"+cfg.VMName)
	var nf *find.NotFoundError
	if errors.As(err, &nf) {
		return nil, nil
	}
	return vm, err
}

// powerState is the VM's power state.
func powerState(ctx context.Context, vm *object.VirtualMachine) (types.VirtualMachinePowerState, error) {
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"runtime.powerState"}, &m); err != nil {
		return "", err
	}
	return m.Runtime.PowerState, nil
}

func powerOn(ctx context.Context, vm *object.VirtualMachine) error {
	task, err := vm.PowerOn(ctx)
	if err == nil {
		_, err = task.WaitForResult(ctx, nil)
	}
	return err
}

// powerOff turns the VM off at once; a VM already off is fine.
func powerOff(ctx context.Context, vm *object.VirtualMachine) error {
	task, err := vm.PowerOff(ctx)
	if err == nil {
		_, err = task.WaitForResult(ctx, nil)
	}
	if err != nil && fault.Is(err, &types.InvalidPowerState{}) {
		return nil
	}
	return err
}

// shutdown stops a powered-on VM: a guest shutdown first (ShutdownGuest:
// VMware Tools in the guest shut it down; without Tools, which unikfile's
// guests have none of, vSphere refuses it at once), waiting up to grace
// for the VM to power off, then a hard power off. It says which ended it.
func shutdown(ctx context.Context, vm *object.VirtualMachine, grace, poll time.Duration) (string, error) {
	st, err := powerState(ctx, vm)
	if err != nil {
		return "", err
	}
	if st == types.VirtualMachinePowerStatePoweredOff {
		return "already off", nil
	}
	if err := vm.ShutdownGuest(ctx); err == nil {
		deadline := time.Now().Add(grace)
		for time.Now().Before(deadline) {
			if st, err := powerState(ctx, vm); err == nil && st == types.VirtualMachinePowerStatePoweredOff {
				return "guest shutdown", nil
			}
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(poll):
			}
		}
	}
	if err := powerOff(ctx, vm); err != nil {
		return "", fmt.Errorf("power off: %w", err)
	}
	return "power off", nil
}

// destroy deletes the VM with its files; one already gone is fine.
func destroy(ctx context.Context, vm *object.VirtualMachine) error {
	if err := powerOff(ctx, vm); err != nil && !fault.Is(err, &types.ManagedObjectNotFound{}) {
		return fmt.Errorf("power off: %w", err)
	}
	task, err := vm.Destroy(ctx)
	if err == nil {
		_, err = task.WaitForResult(ctx, nil)
	}
	if err != nil && !fault.Is(err, &types.ManagedObjectNotFound{}) {
		return fmt.Errorf("destroy: %w", err)
	}
	return nil
}

// copyDisk copies the image disk to the VM's own disk, converting the
// uploaded flat file into a disk of the datastore's own (thin on an ESXi
// host; vCenter takes no destination spec and keeps the source's kind).
func copyDisk(ctx context.Context, c *vim25.Client, dc *object.Datacenter, src, dst string) error {
	var spec types.BaseVirtualDiskSpec
	if !c.IsVC() {
		spec = &types.FileBackedVirtualDiskSpec{
			VirtualDiskSpec: types.VirtualDiskSpec{
				DiskType:    string(types.VirtualDiskTypeThin),
				AdapterType: string(types.VirtualDiskAdapterTypeLsiLogic),
			},
		}
	}
	m := object.NewVirtualDiskManager(c)
	task, err := m.CopyVirtualDisk(ctx, src, dc, dst, dc, spec, false)
	if err == nil {
		_, err = task.WaitForResult(ctx, nil)
	}
	return err
}
