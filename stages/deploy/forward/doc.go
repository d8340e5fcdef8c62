// Package forward is the small TCP forwarder behind `unikfile watch`: it
// owns a host port for as long as the watch runs and sends each new
// connection to the current backend (a VM's internal port). Switching to a
// new backend is atomic: connections accepted after Switch go to the new
// backend, connections already open stay with the old one, which can then be
// drained (waited for, with a bound, then closed) before its VM is stopped.
// That is how a new version of an app replaces the old one without a
// refused or reset connection.
//
// It must not know about VMs, apps or HTTP: it moves bytes between TCP
// connections. Its caller (the watch loop in package devloop) decides when
// to switch and when to stop the old VM.
package forward
