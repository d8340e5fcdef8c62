package compile

import (
	"context"
	"fmt"

	"github.com/unikfile/unikfile/lang"
	"github.com/unikfile/unikfile/stages/compile/rumprun"
)

// Cross is a toolchain of a base's own that compiles C and C++ for it in
// place of the host's compilers (Rumprun's, for the rump base). Its
// programs are not Linux programs: they are installed as they are (no
// strip of their symbols, no shared-library closure) and the base's
// package stage links them further.
type Cross struct {
	// Name is the toolchain's name in messages ("Rumprun").
	Name string
	// CC and CXX are the compilers (absolute paths); make gets them as CC
	// and CXX (AR and RANLIB too), CMake through CMakeToolchain.
	CC, CXX, AR, RANLIB string
	// CMakeToolchain is the CMake toolchain file (-DCMAKE_TOOLCHAIN_FILE).
	CMakeToolchain string
	// Environ returns the environment its programs run in, given the
	// caller's.
	Environ func(environ []string) []string
	// CXXFlags come before the user's CXXFLAGS (which can override them).
	CXXFlags string
	// Identity identifies the toolchain for cache keys.
	Identity func(ctx context.Context) (string, error)
	// Program says why file (name, its path in the bundle) is not a
	// program this toolchain linked; it is how the one program of a make
	// or CMake build is found.
	Program func(file, name string) error
}

// rumprunSettings are the rump block's settings, as the compile stage
// reads them (stages/package/rump cannot be imported here): the
// toolchain the app names, "" when it is looked for elsewhere.
type rumprunSettings interface {
	RumpToolchain() string
}

// rumpSetting is what app's rump block says of its toolchain.
func rumpSetting(app *lang.App) string {
	if s, ok := app.BaseSettings.(rumprunSettings); ok && s != nil {
		return s.RumpToolchain()
	}
	return ""
}

// rumprunCross is the rump base's C and C++ toolchain: Rumprun's, found
// from the app's rump block, UNIKFILE_RUMPRUN_TOOLCHAIN or PATH. Rumprun's
// libc++ (2016) does not build as C++17, gcc 12's default, so C++ is
// compiled as gnu++14 unless CXXFLAGS says otherwise.
func rumprunCross(app *lang.App) (*Cross, error) {
	tc, err := rumprun.Resolve(rumpSetting(app), nil)
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", app.Name, err)
	}
	bin := func(tool string) string { return tc.Dir + "/bin/" + rumprun.Tuple + "-" + tool }
	return &Cross{
		Name: "Rumprun", CC: tc.CC(), CXX: tc.CXX(), AR: bin("ar"), RANLIB: bin("ranlib"),
		CMakeToolchain: tc.CMakeFile(),
		Environ:        tc.Environ,
		CXXFlags:       "-std=gnu++14",
		Identity:       tc.Identity,
		Program:        rumprun.CheckProgram,
	}, nil
}
