package devloop

import (
	"encoding/json"
	"time"
)

// Event kinds.
const (
	EventWatching      = "watching"       // the loop follows the tree (Message: the root)
	EventListening     = "listening"      // a forwarder owns a host port (URL)
	EventChange        = "change"         // files changed (Paths, Apps)
	EventReloaded      = "unikfile-read"  // the Unikfile was read again and is valid
	EventUnikfileError = "unikfile-error" // the edited Unikfile is invalid; the old one still runs
	EventBuildStarted  = "build-started"
	EventBuildCancel   = "build-cancelled" // a newer change made it stale
	EventBuildFailed   = "build-failed"    // Error says why; the old version keeps serving
	EventBuildDone     = "build-done"      // Image
	EventUnchanged     = "unchanged"       // the build gave the image that already serves (Instance): no reboot
	EventBootStarted   = "boot-started"
	EventBootFailed    = "boot-failed" // Error says why; the old version keeps serving
	EventSwapped       = "swapped"     // new connections go to Instance (Replaced: the old one)
	EventStopped       = "stopped"     // a VM was stopped (Instance)
	EventRemoved       = "removed"     // an app left the target
	EventNote          = "note"        // a message from a stage or provider
	EventError         = "error"       // a problem the loop goes on after
)

// Event is one thing that happened, as one line of output.
type Event struct {
	Time     time.Time     `json:"time"`
	Kind     string        `json:"event"`
	App      string        `json:"app,omitempty"`
	Apps     []string      `json:"apps,omitempty"`
	Paths    []string      `json:"paths,omitempty"` // relative to the project
	Image    string        `json:"image,omitempty"`
	Instance string        `json:"instance,omitempty"`
	Replaced string        `json:"replaced,omitempty"`
	URL      string        `json:"url,omitempty"`
	Duration time.Duration `json:"-"`
	// Boot is, for swapped, how long the boot took of Duration.
	Boot    time.Duration `json:"-"`
	Message string        `json:"message,omitempty"`
	Error   string        `json:"error,omitempty"`
}

// MarshalJSON adds the durations in milliseconds.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	return json.Marshal(struct {
		plain
		DurationMS int64 `json:"duration_ms,omitempty"`
		BootMS     int64 `json:"boot_ms,omitempty"`
	}{plain(e), e.Duration.Milliseconds(), e.Boot.Milliseconds()})
}
