package includeos

import (
	"fmt"
	"strings"
	"unicode"
)

// MaxCmdline is the longest command line unikfile passes; the multiboot
// loader copies it into the guest's memory whole.
const MaxCmdline = 4096

// Cmdline is the multiboot command line after the kernel's name: the
// app's args, one word each. IncludeOS splits the line at white space
// (Service::start(const std::string&) in src/kernel/service_stub.cpp,
// which then calls main(argc, argv)) and has no quoting, so an argument
// with white space, an empty one or a control character cannot pass.
// The loader puts the kernel's own file name first (QEMU: the -kernel
// path, GRUB: what the menu names), which becomes argv[0]. Quotes and
// backslashes cannot pass either: GRUB, which boots IncludeOS's disks,
// puts a backslash before each in the line it hands over.
func Cmdline(args []string) (string, error) {
	for _, a := range args {
		if a == "" {
			return "", fmt.Errorf("an empty argument cannot reach an IncludeOS service: IncludeOS splits its command line at white space and drops empty words")
		}
		if i := strings.IndexFunc(a, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
			return "", fmt.Errorf("argument %q holds white space or a control character: IncludeOS splits its command line at white space and has no quoting; pass it as several arguments", a)
		}
		if strings.ContainsAny(a, `'"\`) {
			return "", fmt.Errorf("argument %q holds a quote or a backslash, which GRUB (the loader of IncludeOS disks) escapes with a backslash on the way: leave them out of IncludeOS arguments", a)
		}
	}
	line := strings.Join(args, " ")
	if len(line) > MaxCmdline {
		return "", fmt.Errorf("the command line would be %d bytes, more than the %d unikfile passes to IncludeOS; shorten the app's args", len(line), MaxCmdline)
	}
	return line, nil
}
