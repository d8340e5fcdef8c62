package gcefake

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	compute "google.golang.org/api/compute/v1"
)

// Options configure a Server.
type Options struct {
	// Projects the server knows; others are 404. Default: "test-project".
	Projects []string
	// Zones the server knows, with the machine types of Machines in each.
	// Default: europe-west1-b and us-central1-a.
	Zones []string
	// Objects opens a Cloud Storage object, which images.insert imports
	// (rawDisk.source). Required for images.insert.
	Objects func(bucket, object string) (io.ReadCloser, error)
	// Guest is the stand-in for the guest of an instance: what its serial
	// console shows and when. Default: DefaultGuest.
	Guest func(inst *compute.Instance, features []string) Guest
	// Step is how long an operation stays PENDING, then RUNNING; default
	// 20 ms.
	Step time.Duration
	// SerialBuffer is how many bytes of a serial console are kept (GCE
	// keeps 1 MiB, the default).
	SerialBuffer int
	// Keys are the service account keys whose tokens the server accepts.
	// With none, requests need no credentials.
	Keys []*Key
}

// Server is a Compute Engine endpoint: the compute v1 REST API at
// URL+"/compute/v1/", for what unikfile uses of it, and an OAuth token
// endpoint at URL+"/token".
type Server struct {
	URL string
	ts  *httptest.Server
	o   Options

	mu         sync.Mutex
	now        func() time.Time
	seq        int
	images     map[string]*image     // project/name
	instances  map[string]*instance  // project/zone/name
	firewalls  map[string]*firewall  // project/name
	operations map[string]*operation // name
	requests   map[string]string     // requestId -> operation name
	faults     []*Fault
	counts     map[string]int
	calls      []string
	denied     map[string]bool
	tokens     map[string]time.Time
}

// New starts a server on 127.0.0.1; Close stops it.
func New(o Options) *Server {
	if len(o.Projects) == 0 {
		o.Projects = []string{"test-project"}
	}
	if len(o.Zones) == 0 {
		o.Zones = []string{"europe-west1-b", "us-central1-a"}
	}
	if o.Guest == nil {
		o.Guest = DefaultGuest
	}
	if o.Step <= 0 {
		o.Step = 20 * time.Millisecond
	}
	if o.SerialBuffer <= 0 {
		o.SerialBuffer = 1 << 20
	}
	s := &Server{
		o: o, now: time.Now,
		images: map[string]*image{}, instances: map[string]*instance{}, firewalls: map[string]*firewall{},
		operations: map[string]*operation{}, requests: map[string]string{},
		counts: map[string]int{}, denied: map[string]bool{}, tokens: map[string]time.Time{},
	}
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	s.ts.Listener = l
	s.ts.Start()
	s.URL = s.ts.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.ts.Close() }

// Endpoint is the compute API's base URL, for option.WithEndpoint.
func (s *Server) Endpoint() string { return s.URL + "/compute/v1/" }

// Machines are the machine types of every zone, with their memory in MB.
var Machines = map[string]int64{"e2-micro": 1024, "e2-small": 2048, "e2-medium": 4096, "n2-standard-2": 8192}

// Deny makes every call that needs permission answer 403, as GCE does for
// credentials that lack it.
func (s *Server) Deny(permission string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[permission] = true
}

// Calls are the API methods called so far (compute.images.insert, ...), in
// order.
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Mutations are the calls so far that change something.
func (s *Server) Mutations() []string {
	var out []string
	for _, c := range s.Calls() {
		if mutating(c) {
			out = append(out, c)
		}
	}
	return out
}

func mutating(method string) bool {
	m := method[strings.LastIndexByte(method, '.')+1:]
	return m == "insert" || m == "delete" || m == "patch" || m == "update" || strings.HasPrefix(m, "set") || m == "start" || m == "stop"
}

// Images, Instances and Firewalls list what exists, by name.
func (s *Server) Images() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick()
	return sortedNames(s.images, func(i *image) string { return i.Name })
}

func (s *Server) Instances() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick()
	return sortedNames(s.instances, func(i *instance) string { return i.Name })
}

func (s *Server) Firewalls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick()
	return sortedNames(s.firewalls, func(f *firewall) string { return f.Name })
}

// Instance returns a copy of the instance called name, or nil.
func (s *Server) Instance(name string) *compute.Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick()
	for _, i := range s.instances {
		if i.Name == name {
			c := *i.Instance
			return &c
		}
	}
	return nil
}

// Image returns a copy of the image called name, or nil.
func (s *Server) Image(name string) *compute.Image {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick()
	for _, i := range s.images {
		if i.Name == name {
			c := *i.Image
			return &c
		}
	}
	return nil
}

// Firewall returns a copy of the rule called name, or nil.
func (s *Server) Firewall(name string) *compute.Firewall {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.firewalls {
		if f.Name == name {
			c := *f.Firewall
			return &c
		}
	}
	return nil
}

func sortedNames[T any](m map[string]T, name func(T) string) []string {
	out := []string{}
	for _, v := range m {
		out = append(out, name(v))
	}
	slices.Sort(out)
	return out
}

// apiError is GCE's error body.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Errors  []struct {
		Message string `json:"message"`
		Domain  string `json:"domain"`
		Reason  string `json:"reason"`
	} `json:"errors"`
	Status string `json:"status,omitempty"`
}

func newError(code int, reason, format string, args ...any) *apiError {
	msg := fmt.Sprintf(format, args...)
	e := &apiError{Code: code, Message: msg}
	e.Errors = append(e.Errors, struct {
		Message string `json:"message"`
		Domain  string `json:"domain"`
		Reason  string `json:"reason"`
	}{msg, "global", reason})
	switch code {
	case 400:
		e.Status = "INVALID_ARGUMENT"
	case 401:
		e.Status = "UNAUTHENTICATED"
	case 403:
		e.Status = "PERMISSION_DENIED"
	case 404:
		e.Status = "NOT_FOUND"
	case 409:
		e.Status = "ALREADY_EXISTS"
	default:
		e.Status = "INTERNAL"
	}
	return e
}

func notFound(resource string) *apiError {
	return newError(404, "notFound", "The resource '%s' was not found", resource)
}

func invalid(field, format string, args ...any) *apiError {
	return newError(400, "invalid", "Invalid value for field '%s': %s", field, fmt.Sprintf(format, args...))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.Code, map[string]any{"error": e})
}

// route is one API method: its id, HTTP method and path pattern (names
// in braces are path segments).
type route struct {
	id, method string
	re         *regexp.Regexp
	names      []string
	h          func(s *Server, r *request) (any, *apiError)
	params     []string // query parameters it takes besides the common ones
}

// request is a call being served.
type request struct {
	*http.Request
	vars map[string]string
	body []byte
	id   string
}

func (r *request) v(k string) string { return r.vars[k] }

var routes []*route

func handle(id, method, pattern string, h func(s *Server, r *request) (any, *apiError), params ...string) {
	var names []string
	re := regexp.MustCompile(`\{([a-zA-Z]+)\}`).ReplaceAllStringFunc(pattern, func(m string) string {
		names = append(names, m[1:len(m)-1])
		return `([^/]+)`
	})
	routes = append(routes, &route{id: id, method: method, re: regexp.MustCompile("^/compute/v1/" + re + "$"), names: names, h: h, params: params})
}

// commonParams are the query parameters every method takes.
var commonParams = []string{"alt", "prettyPrint", "fields", "key", "quotaUser", "userIp", "$.xgafv", "callback", "uploadType", "upload_protocol"}

func (s *Server) serve(w http.ResponseWriter, hr *http.Request) {
	if hr.URL.Path == "/token" {
		s.serveToken(w, hr)
		return
	}
	for _, rt := range routes {
		m := rt.re.FindStringSubmatch(hr.URL.EscapedPath())
		if m == nil || hr.Method != rt.method {
			continue
		}
		req := &request{Request: hr, vars: map[string]string{}, id: rt.id}
		for i, n := range rt.names {
			v, _ := url.PathUnescape(m[i+1])
			req.vars[n] = v
		}
		for k := range hr.URL.Query() {
			if !slices.Contains(commonParams, k) && !slices.Contains(rt.params, k) {
				writeError(w, newError(400, "invalidParameter", "Invalid JSON payload received. Unknown name %q: Cannot bind query parameter. Field %q could not be found in request message.", k, k))
				return
			}
		}
		if hr.Body != nil {
			req.body, _ = io.ReadAll(hr.Body)
		}
		if e := s.authorize(hr); e != nil {
			writeError(w, e)
			return
		}
		s.mu.Lock()
		s.calls = append(s.calls, rt.id)
		s.counts[rt.id]++
		n := s.counts[rt.id]
		s.tick()
		f := s.fault(rt.id, n)
		if f != nil && f.Before != nil {
			s.mu.Unlock()
			f.Before()
			s.mu.Lock()
			s.tick()
			if f.Status == 0 && !f.Apply && f.Operation == nil {
				f = nil
			}
		}
		if f != nil && !f.Apply && f.Operation == nil {
			s.mu.Unlock()
			writeError(w, newError(f.status(), "backendError", "Injected fault: %s call %d", rt.id, n))
			return
		}
		if project := req.v("project"); project != "" && !slices.Contains(s.o.Projects, project) {
			s.mu.Unlock()
			writeError(w, notFound("projects/"+project))
			return
		}
		if zone := req.v("zone"); zone != "" && !slices.Contains(s.o.Zones, zone) {
			s.mu.Unlock()
			writeError(w, notFound("projects/"+req.v("project")+"/zones/"+zone))
			return
		}
		out, e := rt.h(s, req)
		if e == nil {
			if o, ok := out.(*compute.Operation); ok && f != nil && f.Operation != nil {
				s.operations[o.Name].fail = f.Operation
			}
		}
		wait := time.Duration(0)
		if o, ok := out.(*compute.Operation); ok && strings.HasSuffix(rt.id, "Operations.wait") && o.Status != "DONE" {
			wait = s.operations[o.Name].untilNext(s.now())
		}
		s.mu.Unlock()
		if wait > 0 {
			// operations.wait returns when the operation changes (GCE's
			// returns when it is DONE, or after a deadline).
			time.Sleep(wait)
			s.mu.Lock()
			s.tick()
			out = s.operations[out.(*compute.Operation).Name].view(s.now())
			s.mu.Unlock()
		}
		if e != nil {
			writeError(w, e)
			return
		}
		if f != nil && f.Apply {
			writeError(w, newError(f.status(), "backendError", "Injected fault after the call took effect: %s call %d", rt.id, n))
			return
		}
		writeJSON(w, 200, out)
		return
	}
	writeError(w, newError(404, "notFound", "The requested URL %s was not found on this server (method %s).", hr.URL.Path, hr.Method))
}

// decode reads the request body into v strictly: unknown fields are an
// error, as for GCE.
func decode(r *request, v any) *apiError {
	if len(r.body) == 0 {
		return newError(400, "required", "Required field 'resource' not specified")
	}
	d := json.NewDecoder(strings.NewReader(string(r.body)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return newError(400, "parseError", "Invalid JSON payload received. %v", err)
	}
	return nil
}

// permission checks a permission the call needs.
func (s *Server) permission(perm, resource string) *apiError {
	if s.denied[perm] {
		return newError(403, "forbidden", "Required '%s' permission for '%s'", perm, resource)
	}
	return nil
}

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// requestID checks the call's requestId; dup says an earlier call had the
// same one, whose operation is returned instead of doing the call again.
func (s *Server) requestID(r *request) (*compute.Operation, bool, *apiError) {
	rid := r.URL.Query().Get("requestId")
	if rid == "" {
		return nil, false, nil
	}
	if !uuidRe.MatchString(rid) || rid == "00000000-0000-0000-0000-000000000000" {
		return nil, false, invalid("requestId", "'%s' is not a valid UUID", rid)
	}
	if name, ok := s.requests[rid]; ok {
		return s.operations[name].view(s.now()), true, nil
	}
	return nil, false, nil
}

var nameRe = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)

func checkName(field, name string) *apiError {
	if name == "" {
		return newError(400, "required", "Required field '%s' not specified", field)
	}
	if !nameRe.MatchString(name) {
		return invalid(field, "'%s'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'", name)
	}
	return nil
}

var labelKeyRe = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
var labelValueRe = regexp.MustCompile(`^[a-z0-9_-]{0,63}$`)

func checkLabels(field string, labels map[string]string) *apiError {
	if len(labels) > 64 {
		return invalid(field, "at most 64 labels")
	}
	for k, v := range labels {
		if !labelKeyRe.MatchString(k) {
			return invalid(field+".key", "'%s'. Label keys must start with a lowercase letter and hold at most 63 lowercase letters, digits, dashes and underscores", k)
		}
		if !labelValueRe.MatchString(v) {
			return invalid(field+".value", "'%s'. Label values hold at most 63 lowercase letters, digits, dashes and underscores", v)
		}
	}
	return nil
}

// lastSegment is the name at the end of a resource URL or partial URL.
func lastSegment(u string) string { return u[strings.LastIndexByte(u, '/')+1:] }

// resourcePath is a URL or partial URL without the API's prefix:
// projects/p/global/images/x.
func resourcePath(u string) string {
	if i := strings.Index(u, "/compute/v1/"); i >= 0 {
		u = u[i+len("/compute/v1/"):]
	}
	return strings.TrimPrefix(u, "/")
}

func (s *Server) selfLink(path string) string { return s.Endpoint() + path }

func (s *Server) timestamp() string { return s.now().Format("2006-01-02T15:04:05.000-07:00") }

func (s *Server) nextID() uint64 {
	s.seq++
	return uint64(1_000_000_000 + s.seq)
}
