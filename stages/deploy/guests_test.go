package deploy

import (
	"context"
	"strings"
	"testing"

	pack "github.com/unikfile/unikfile/stages/package"
)

// foreignFake is the fake provider with the ability to boot guests
// without unikfile's init.
type foreignFake struct{ *fakeProvider }

func (foreignFake) BootsForeignGuests() {}

// An image of a base without unikfile's init (a console protocol, a root
// disk) on a provider that cannot apply them is refused before anything
// boots or is recorded; a provider that can boots it.
func TestUpRefusesForeignGuestsOnOtherProviders(t *testing.T) {
	for _, img := range []*pack.Image{
		{App: "api", Base: "osv", Digest: "d1", Console: &pack.ConsoleProtocol{Boot: "OSv v", Ready: "ready"}},
		{App: "api", Base: "osv", Digest: "d1", RootDisk: "rootfs.img"},
	} {
		fx := newFixture(t)
		_, err := Up(context.Background(), fx.store, fx.reg, UpRequest{
			Project: fx.project, Target: fx.target,
			Images: map[string]AppImage{"api": {Image: img, Dir: "/images/api"}},
		})
		if err == nil || !strings.Contains(err.Error(), `provider "fake" cannot boot images of base "osv"`) || !strings.Contains(err.Error(), `provider = "qemu"`) {
			t.Fatalf("up = %v, want a refusal naming the provider and the base and saying what to do", err)
		}
		if fx.fake.boots != 0 || len(fx.instances(t)) != 0 {
			t.Errorf("boots %d, records %d: want nothing booted or recorded", fx.fake.boots, len(fx.instances(t)))
		}

		fx.reg["fake"] = func(Env) (Provider, error) { return foreignFake{fx.fake}, nil }
		res, err := Up(context.Background(), fx.store, fx.reg, UpRequest{
			Project: fx.project, Target: fx.target,
			Images: map[string]AppImage{"api": {Image: img, Dir: "/images/api"}},
		})
		if err != nil || len(res) != 1 || res[0].Action != ActionStarted {
			t.Fatalf("up on a provider that boots such guests = %+v, %v", res, err)
		}
	}
}
