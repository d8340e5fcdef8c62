package kbuild

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// toolsHint ends the error when a build tool is missing.
const toolsHint = "building a kernel needs " + toolsPackages + "; install them: apt-get install " + toolsPackages

// toolsPackages are Debian's packages for CheckTools' programs and headers.
const toolsPackages = "build-essential flex bison bc libelf-dev binutils xz-utils"

// requiredPrograms are what the kernel's build runs (make and the C
// compiler, the Kconfig parser's generators, bc for the timer constants,
// objcopy, xz for the source tarball).
var requiredPrograms = []string{"make", "gcc", "ld", "flex", "bison", "bc", "objcopy", "nice", "tar", "xz", "perl"}

// requiredHeaders are the host headers the build compiles tools against
// (objtool reads ELF through libelf).
var requiredHeaders = []string{"/usr/include/libelf.h", "/usr/include/gelf.h"}

// CheckTools says which build tools are missing, with the packages to
// install, or nil.
func CheckTools() error {
	var missing []string
	for _, p := range requiredPrograms {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	for _, h := range requiredHeaders {
		if _, err := os.Stat(h); err != nil {
			missing = append(missing, h)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%s missing: %s", strings.Join(missing, ", "), toolsHint)
}
