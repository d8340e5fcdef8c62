package osv

import "encoding/binary"

// sector is the disk's sector size.
const sector = 512

// The MBR: 446 bytes of boot code, four 16-byte partition entries, then
// the signature 0x55 0xAA. OSv reads entry #2 (index 1) as /dev/vblk0.1,
// and skips an entry whose type or starting CHS sector is zero
// (fs/devfs/device.cc), so both are always filled.
const (
	partitionTable = 446
	rofsEntry      = 1    // entry #2
	linuxType      = 0x83 // what OSv's scripts write
)

// setPartition writes MBR entry #2 into mbr (a 512-byte first sector):
// not bootable, type 0x83, starting at LBA start for count sectors, with
// CHS addresses for a 255-head, 63-sector geometry, clamped as usual
// beyond cylinder 1023. The signature is set too.
func setPartition(mbr []byte, start, count uint32) {
	e := mbr[partitionTable+16*rofsEntry : partitionTable+16*(rofsEntry+1)]
	e[0] = 0x00
	copy(e[1:4], chs(start))
	e[4] = linuxType
	copy(e[5:8], chs(start+count-1))
	binary.LittleEndian.PutUint32(e[8:], start)
	binary.LittleEndian.PutUint32(e[12:], count)
	mbr[510], mbr[511] = 0x55, 0xaa
}

// chs is the 3-byte CHS address of an LBA: head, then sector (bits 0-5)
// with the cylinder's bits 8-9 (bits 6-7), then the cylinder's low byte.
func chs(lba uint32) []byte {
	const heads, sectors = 255, 63
	c := lba / (heads * sectors)
	h := (lba / sectors) % heads
	s := lba%sectors + 1
	if c > 1023 {
		c, h, s = 1023, 254, 63
	}
	return []byte{byte(h), byte(s) | byte(c>>8)<<6, byte(c)}
}
