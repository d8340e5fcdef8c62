package pipeline

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/unikfile/unikfile/lang"
)

func TestStampable(t *testing.T) {
	p := &lang.Project{Build: lang.Build{Executor: "local"}}
	goApp := lang.ProjectApp{Project: p, App: &lang.App{Name: "a", Language: "go", Base: "linux"}}
	cApp := lang.ProjectApp{Project: p, App: &lang.App{Name: "c", Language: "c", Base: "linux"}}
	bk := lang.ProjectApp{Project: &lang.Project{Build: lang.Build{Executor: "buildkit"}}, App: goApp.App}
	for _, c := range []struct {
		name     string
		apps     []lang.ProjectApp
		format   string
		executor string
		environ  []string
		want     bool
	}{
		{"go apps, local, kernel+initrd", []lang.ProjectApp{goApp}, "kernel+initrd", "", nil, true},
		{"a disk format", []lang.ProjectApp{goApp}, "qcow2", "", nil, false},
		{"another language", []lang.ProjectApp{goApp, cApp}, "kernel+initrd", "", nil, false},
		{"--executor buildkit", []lang.ProjectApp{goApp}, "kernel+initrd", "buildkit", nil, false},
		{"UNIKFILE_BUILDKIT_HOST", []lang.ProjectApp{goApp}, "kernel+initrd", "", []string{"UNIKFILE_BUILDKIT_HOST=tcp://b:1"}, false},
		{"a Unikfile choosing buildkit", []lang.ProjectApp{bk}, "kernel+initrd", "", nil, false},
	} {
		if got := Stampable(c.apps, c.format, c.executor, c.environ); got != c.want {
			t.Errorf("%s: Stampable = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestToolchainFilesFollowPATH(t *testing.T) {
	bin := t.TempDir()
	real := filepath.Join(t.TempDir(), "go")
	if err := os.WriteFile(real, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(bin, "go")); err != nil {
		t.Fatal(err)
	}
	got := ToolchainFiles([]string{"PATH=/nonexistent:" + bin, "GOENV=/etc/goenv"})
	want := []string{filepath.Join(bin, "go"), real, "/etc/goenv"}
	if !slices.Equal(got, want) {
		t.Errorf("ToolchainFiles = %v, want %v", got, want)
	}
}
