package main

import (
	"encoding/binary"
	"testing"
)

func TestIsPowerPress(t *testing.T) {
	ev := func(typ, code uint16, value int32) []byte {
		b := make([]byte, inputEventSize)
		binary.LittleEndian.PutUint16(b[16:], typ)
		binary.LittleEndian.PutUint16(b[18:], code)
		binary.LittleEndian.PutUint32(b[20:], uint32(value))
		return b
	}
	if !isPowerPress(ev(evKey, keyPower, 1)) {
		t.Error("power key down not recognised")
	}
	for _, b := range [][]byte{ev(evKey, keyPower, 0), ev(evKey, 115, 1), ev(0, 0, 0), ev(evKey, keyPower, 1)[:10]} {
		if isPowerPress(b) {
			t.Errorf("%v taken for a power key press", b)
		}
	}
}
