package awstest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"
)

// Fixed identity of the endpoint.
const (
	AccessKey = "AKIAUNIKFILETEST0001"
	SecretKey = "unikfile/test/secret/key/not/a/real/one/00"
	Account   = "123456789012"
	Region    = "us-east-1"
	// DefaultVPC and DefaultSubnet are the account's default VPC and its
	// default subnet; OtherSubnet is a subnet of another VPC.
	DefaultVPC    = "vpc-0defa017"
	DefaultSubnet = "subnet-0defa017a"
	OtherVPC      = "vpc-0a11ce5"
	OtherSubnet   = "subnet-0a11ce5a"
)

// Options shape a Server; zero values are the defaults.
type Options struct {
	// Region is the one region the endpoint serves; requests signed for
	// another are refused as AWS refuses them. Default Region.
	Region string
	// Delays of the asynchronous state changes: a completed snapshot
	// (default 50ms), an AMI becoming available (50ms), an instance
	// running (100ms), terminated (100ms), stopped after its guest
	// powered off (100ms).
	SnapshotDelay, ImageDelay, RunDelay, TerminateDelay, StopDelay time.Duration
	// Guest says what an instance's guest prints; nil is DefaultGuest.
	Guest func(Launch) Guest
	// NoDefaultVPC leaves the account without a default VPC.
	NoDefaultVPC bool
	// Lag is EC2's eventual consistency: for this long after it was
	// created, a snapshot, AMI, security group or instance is unknown to
	// the Describe calls (NotFound by ID, absent from listings),
	// GetConsoleOutput and AuthorizeSecurityGroupIngress.
	Lag time.Duration
}

// Server is the endpoint. Its methods are safe for concurrent use.
type Server struct {
	URL string

	opts Options
	srv  *httptest.Server

	mu        sync.Mutex
	now       func() time.Time
	seq       int
	snapshots map[string]*snapshot
	images    map[string]*image
	instances map[string]*instance
	groups    map[string]*group
	subnets   map[string]*subnet
	calls     []Call
	faults    []*Fault
	allow     map[string]bool // nil: every action allowed
	failSnaps string          // non-empty: completions end in error with it
	failImgs  string          // non-empty: AMIs end in failed with it
	hook      func(action string)
	tokens    map[string]string // client token → resource ID
}

// Call is one request the endpoint answered (or refused).
type Call struct {
	Service string // "ec2" or "ebs"
	Action  string
	// Error is the AWS error code returned, or "".
	Error string
}

// Mutating says whether the call's action changes something.
func (c Call) Mutating() bool {
	for _, p := range []string{"Describe", "Get", "List"} {
		if strings.HasPrefix(c.Action, p) {
			return false
		}
	}
	return true
}

// New starts an endpoint on 127.0.0.1; Close stops it.
func New(opts Options) *Server {
	if opts.Region == "" {
		opts.Region = Region
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&opts.SnapshotDelay, 50*time.Millisecond)
	def(&opts.ImageDelay, 50*time.Millisecond)
	def(&opts.RunDelay, 100*time.Millisecond)
	def(&opts.TerminateDelay, 100*time.Millisecond)
	def(&opts.StopDelay, 100*time.Millisecond)
	if opts.Guest == nil {
		opts.Guest = DefaultGuest
	}
	s := &Server{
		opts: opts, now: time.Now,
		snapshots: map[string]*snapshot{}, images: map[string]*image{}, instances: map[string]*instance{},
		groups: map[string]*group{}, subnets: map[string]*subnet{}, tokens: map[string]string{},
	}
	if !opts.NoDefaultVPC {
		s.subnets[DefaultSubnet] = &subnet{ID: DefaultSubnet, VPC: DefaultVPC, CIDR: "172.31.0.0/20", Default: true, MapPublic: true, AZ: opts.Region + "a"}
		s.groups["sg-0defa017"] = &group{ID: "sg-0defa017", Name: "default", Description: "default VPC security group", VPC: DefaultVPC, builtin: true}
	}
	s.subnets[OtherSubnet] = &subnet{ID: OtherSubnet, VPC: OtherVPC, CIDR: "10.20.0.0/24", AZ: opts.Region + "b"}
	s.groups["sg-0a11ce5"] = &group{ID: "sg-0a11ce5", Name: "default", Description: "default VPC security group", VPC: OtherVPC, builtin: true}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the endpoint.
func (s *Server) Close() { s.srv.Close() }

// Region is the region the endpoint serves.
func (s *Server) Region() string { return s.opts.Region }

// Env is the environment that points an SDK's default configuration (and
// so a unikfile binary) at the endpoint, with its credentials and region.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + SecretKey,
		"AWS_SESSION_TOKEN=",
		"AWS_REGION=" + s.opts.Region,
		"AWS_ENDPOINT_URL=" + s.URL,
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Fault makes calls of one action fail.
type Fault struct {
	Action string // e.g. "PutSnapshotBlock", "RunInstances"
	// After lets that many calls of Action through first; Times is how many
	// then fail (0: every one).
	After, Times int
	// Code is the AWS error code (e.g. "RequestThrottledException",
	// "InternalServerException", "InsufficientInstanceCapacity"); Status
	// its HTTP status (default 400, 500 for Internal*, 503 for
	// RequestLimitExceeded).
	Code    string
	Status  int
	Message string

	seen, failed int
}

// Inject adds a fault.
func (s *Server) Inject(f *Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f)
}

// ClearFaults removes every fault and failure mode.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults, s.failSnaps, s.failImgs = nil, "", ""
}

// FailSnapshots makes every snapshot completed from now on end in the
// error state with msg ("" stops it).
func (s *Server) FailSnapshots(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failSnaps = msg
}

// FailImages makes every AMI registered from now on end in the failed
// state with msg ("" stops it).
func (s *Server) FailImages(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failImgs = msg
}

// Allow restricts the caller to the IAM actions listed ("ec2:RunInstances",
// "ebs:PutSnapshotBlock", ...); nil allows everything. Tagging at creation
// needs ec2:CreateTags as well, as on AWS.
func (s *Server) Allow(actions []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if actions == nil {
		s.allow = nil
		return
	}
	s.allow = map[string]bool{}
	for _, a := range actions {
		s.allow[a] = true
	}
}

// OnCall sets a function called with each action before it is handled,
// outside the server's lock (it may block, e.g. until a test has killed
// the client).
func (s *Server) OnCall(f func(action string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = f
}

// Calls is the log of calls so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// ResetCalls empties the call log.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

// Count is how many calls of action were answered without error.
func (s *Server) Count(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c.Action == action && c.Error == "" {
			n++
		}
	}
	return n
}

// apiError is an error in the service's own terms.
type apiError struct {
	Status  int
	Code    string
	Message string
	Reason  string // EBS exceptions' Reason field
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// fault returns the injected error for a call of action, if any. Called
// with s.mu held.
func (s *Server) fault(action string) *apiError {
	for _, f := range s.faults {
		if f.Action != action {
			continue
		}
		f.seen++
		if f.seen <= f.After || (f.Times > 0 && f.failed >= f.Times) {
			continue
		}
		f.failed++
		st := f.Status
		if st == 0 {
			switch {
			case strings.HasPrefix(f.Code, "Internal"):
				st = 500
			case f.Code == "RequestLimitExceeded" || f.Code == "ServiceUnavailable":
				st = 503
			default:
				st = 400
			}
		}
		msg := f.Message
		if msg == "" {
			msg = "injected fault"
		}
		return &apiError{Status: st, Code: f.Code, Message: msg}
	}
	return nil
}

// permitted checks the allow-list for the IAM actions a call needs.
// Called with s.mu held.
func (s *Server) permitted(service string, actions ...string) *apiError {
	if s.allow == nil {
		return nil
	}
	for _, a := range actions {
		if s.allow[a] {
			continue
		}
		msg := fmt.Sprintf("User: arn:aws:iam::%s:user/unikfile-test is not authorized to perform: %s because no identity-based policy allows the %s action", Account, a, a)
		if service == "ebs" {
			return &apiError{Status: 403, Code: "AccessDeniedException", Message: msg, Reason: "UNAUTHORIZED_ACCOUNT"}
		}
		return &apiError{Status: 403, Code: "UnauthorizedOperation", Message: "You are not authorized to perform this operation. " + msg + ". Encoded authorization failure message: AbCdEf0123"}
	}
	return nil
}

func (s *Server) record(service, action string, err *apiError) {
	c := Call{Service: service, Action: action}
	if err != nil {
		c.Error = err.Code
	}
	s.calls = append(s.calls, c)
}

func (s *Server) nextID(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s-%017x", prefix, 0xa0000000+s.seq)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 2<<20))
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if strings.HasPrefix(r.URL.Path, "/snapshots") {
		s.serveEBS(w, r, body)
		return
	}
	s.serveEC2(w, r, body)
}

// Shift moves the endpoint's clock for state changes forward by d (a
// snapshot's timeout, say), leaving signature times alone.
func (s *Server) Shift(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.now
	s.now = func() time.Time { return prev().Add(d) }
}

// fresh says whether a resource created at t is still invisible (Lag).
// Called with s.mu held.
func (s *Server) fresh(t time.Time) bool { return s.opts.Lag > 0 && s.now().Sub(t) < s.opts.Lag }
