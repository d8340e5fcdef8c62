package linux

import (
	"context"
	"os"
	"testing"

	"github.com/unikfile/unikfile/guest"
)

func TestScratchImages(t *testing.T) {
	if os.Getenv("SCRATCH") == "" {
		t.Skip()
	}
	k, goBin, _ := bootPrereqs(t)
	ctx := context.Background()
	bundle := buildGoApp(ctx, t, goBin, httpServerSrc)
	initBin := buildInit(ctx, t, goBin)
	for _, c := range []string{"none", "gzip"} {
		_, err := Build(ctx, Input{BundleRoot: bundle, Config: guest.Config{App: "hello", Argv: []string{"/app"}, Ports: []int{8080}},
			Kernel: k, InitBinary: initBin, Compression: c}, "/tmp/imgs/"+c)
		if err != nil {
			t.Fatal(err)
		}
	}
}
