// hello is the example app: an HTTP server that says hello and where it runs.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"runtime"
)

// message is what the app answers; edit it and run `unikfile up` again.
const message = "Hello from a unikernel!"

func main() {
	listen := flag.String("listen", ":8080", "address to listen on")
	flag.Parse()
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s\n(host %s, %s/%s, %s)\n", message, host, runtime.GOOS, runtime.GOARCH, runtime.Version())
	})
	log.Printf("hello: listening on %s", *listen)
	log.Fatal(http.ListenAndServe(*listen, nil))
}
