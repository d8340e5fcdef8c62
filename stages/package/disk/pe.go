package disk

import (
	"encoding/binary"
	"fmt"
	"os"
)

// clearPETimestamp sets the COFF header's TimeDateStamp of the PE file at
// path to 0 (what systemd's stub itself carries) and recomputes the PE
// checksum when the file has one.
func clearPETimestamp(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := clearTimestamp(b); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, b, 0o644)
}

func clearTimestamp(b []byte) error {
	if len(b) < 0x40 || string(b[:2]) != "MZ" {
		return fmt.Errorf("not a PE file")
	}
	peOff := int(binary.LittleEndian.Uint32(b[0x3c:]))
	if peOff+24+68 > len(b) || string(b[peOff:peOff+4]) != "PE\x00\x00" {
		return fmt.Errorf("not a PE file")
	}
	binary.LittleEndian.PutUint32(b[peOff+8:], 0) // COFF TimeDateStamp
	sumOff := peOff + 24 + 64                     // optional header CheckSum (PE32 and PE32+)
	if binary.LittleEndian.Uint32(b[sumOff:]) != 0 {
		binary.LittleEndian.PutUint32(b[sumOff:], peChecksum(b, sumOff))
	}
	return nil
}

// peChecksum is the PE image checksum: the 16-bit one's-complement-style
// sum of the file (with the checksum field taken as zero), plus its length.
func peChecksum(b []byte, sumOff int) uint32 {
	var sum uint64
	for i := 0; i+1 < len(b); i += 2 {
		if i == sumOff || i == sumOff+2 {
			continue
		}
		sum += uint64(binary.LittleEndian.Uint16(b[i:]))
		sum = (sum & 0xffff) + (sum >> 16)
	}
	if len(b)%2 == 1 {
		sum += uint64(b[len(b)-1])
		sum = (sum & 0xffff) + (sum >> 16)
	}
	sum = (sum & 0xffff) + (sum >> 16)
	return uint32(sum) + uint32(len(b))
}
