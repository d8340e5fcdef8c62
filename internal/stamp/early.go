package stamp

import (
	"os"
	"strings"
	"time"
)

// ProfileEnv is internal/profile's variable: a process asked for its
// profiles is never answered early (it would have none).
const ProfileEnv = "UNIKFILE_PROFILE"

// earlyKey is the key Early checked and found no valid stamp for; the
// command's own check skips it (see Checked). earlyChanged is what that
// stamp said had changed (see Changed).
var (
	earlyKey     string
	earlyChanged []string
)

// Early answers this process's command from its stamp, if one holds, and
// reports whether it did (the caller then exits with err's status). It is
// meant to run first in the process, before the heavy packages of the
// binary initialise. args are the arguments after the program name. The
// cache is $UNIKFILE_CACHE_DIR or the user's cache folder; a command
// given --cache-dir is left to the command (Check through the CLI).
func Early(args []string) (replayed bool, err error) {
	start := time.Now()
	if len(args) == 0 || os.Getenv(ProfileEnv) != "" {
		return false, nil
	}
	for _, a := range args {
		if a == "--cache-dir" || strings.HasPrefix(a, "--cache-dir=") {
			return false, nil
		}
	}
	dir := os.Getenv("UNIKFILE_CACHE_DIR")
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return false, nil
		}
		dir = base + "/unikfile"
	}
	inv, ok := Current(args)
	if !ok {
		return false, nil
	}
	key := inv.Key()
	r, _, changed, ok := CheckChanged(Path(dir, inv), key, 0)
	if !ok {
		earlyKey, earlyChanged = key, changed
		return false, nil
	}
	return true, r.Print(os.Stdout, os.Stderr, time.Since(start))
}

// Current is the invocation of this process with args.
func Current(args []string) (Invocation, bool) {
	exe, err := os.Executable()
	if err != nil {
		return Invocation{}, false
	}
	wd, err := os.Getwd()
	if err != nil {
		return Invocation{}, false
	}
	return Invocation{Exe: exe, Args: args, Dir: wd, Environ: os.Environ()}, true
}

// Checked reports whether Early already looked for a stamp of key in
// this process and found none that holds, so that the command does not
// check the same stamp twice.
func Checked(key string) bool { return earlyKey != "" && earlyKey == key }

// Changed lists the paths that Early found changed since the last
// successful build of key, the same invocation as this one (sorted; nil
// when Early did not check key or had no stamp of it). They are hints: a
// build starts the work they feed before its other work, so that the one
// app edited in a tree of a hundred compiles while the others are checked
// instead of after.
func Changed(key string) []string {
	if !Checked(key) {
		return nil
	}
	return earlyChanged
}
