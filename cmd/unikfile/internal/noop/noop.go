package noop

import (
	"os"

	"github.com/unikfile/unikfile/internal/stamp"
)

func init() {
	replayed, err := stamp.Early(os.Args[1:])
	if !replayed {
		return
	}
	if err != nil {
		os.Stderr.WriteString("Error: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(0)
}
