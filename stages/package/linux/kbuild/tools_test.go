package kbuild

import (
	"strings"
	"testing"
)

func TestCheckToolsSaysWhatToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := CheckTools()
	if err == nil {
		t.Fatal("no error with an empty PATH")
	}
	for _, want := range []string{"make", "gcc", "flex", "bison", "bc", "apt-get install build-essential flex bison bc libelf-dev"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestDir(t *testing.T) {
	if got := Dir("/c", nil); got != "/c/kbuild" {
		t.Errorf("Dir = %s", got)
	}
	if got := Dir("/c", []string{DirEnv + "=/a", DirEnv + "=/shared"}); got != "/shared" {
		t.Errorf("Dir with %s = %s", DirEnv, got)
	}
}
