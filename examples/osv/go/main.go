// A Go HTTP server for the osv base: built as an externally linked PIE,
// which is how OSv runs Go programs.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"runtime"
)

func main() {
	greeting := os.Getenv("GREETING")
	if greeting == "" {
		greeting = "hello from Go"
	}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s (%s on %s)\n", greeting, runtime.Version(), os.Getenv("OSV_VERSION"))
	})
	log.Printf("serving on :8080")
	log.Fatal(http.ListenAndServe(":8080", nil))
}
