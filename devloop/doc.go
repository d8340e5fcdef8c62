// Package devloop is `unikfile watch`: the edit-to-running loop. It loads
// the Unikfile, builds the apps of one QEMU target through the same cached
// graph as `up`, boots each app on internal ports behind a forwarder that
// owns the declared host ports (package forward), and then follows the
// source tree (package watch). A change rebuilds only the apps whose source
// holds it, cancelling a build that the change made stale (down to the
// compiler's process group); the new VM boots next to the old one, and once
// it is ready new connections go to it, the old one's open connections are
// drained with a bound, and the old VM is stopped. A failed build or boot
// leaves the old version serving. An edited Unikfile is read again; a bad
// one is reported and the old project keeps running.
//
// Its VMs are recorded in the state store with the watch's PID (so `ps`
// shows them and `up` refuses to fight over the target), and every one is
// stopped and its record removed when the loop ends.
//
// It must not print: it reports Events to its caller (the CLI renders them
// as lines or JSON), and console lines go to the writer it is given.
package devloop
