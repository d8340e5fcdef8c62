package main

import "encoding/binary"

// Linux input events (linux/input.h, linux/input-event-codes.h) on amd64
// and arm64: struct timeval (16 bytes), u16 type, u16 code, s32 value.
const (
	inputEventSize = 24
	evKey          = 1
	keyPower       = 116
)

// isPowerPress reports whether an input event is the power key going down.
func isPowerPress(ev []byte) bool {
	if len(ev) < inputEventSize {
		return false
	}
	typ := binary.LittleEndian.Uint16(ev[16:18])
	code := binary.LittleEndian.Uint16(ev[18:20])
	value := int32(binary.LittleEndian.Uint32(ev[20:24]))
	return typ == evKey && code == keyPower && value == 1
}
