package gcefake

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// Storage is github.com/fsouza/fake-gcs-server (in this process, its JSON
// API and resumable uploads) behind a front that injects faults, counts
// the calls that change something, and checks access tokens like Server.
type Storage struct {
	URL    string
	Server *fakestorage.Server
	ts     *httptest.Server
	auth   func(*http.Request) bool

	mu     sync.Mutex
	calls  []string
	counts map[string]int
	faults []*Fault
}

// NewStorage starts the storage server on 127.0.0.1 with buckets; auth,
// if not nil, checks each request's credentials (Server.Authorized).
func NewStorage(auth func(*http.Request) bool, buckets ...string) *Storage {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	url := "http://" + l.Addr().String()
	fs, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true, Scheme: "http", ExternalURL: url, PublicHost: l.Addr().String()})
	if err != nil {
		panic(err)
	}
	for _, b := range buckets {
		fs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: b})
	}
	st := &Storage{URL: url, Server: fs, auth: auth, counts: map[string]int{}}
	st.ts = httptest.NewUnstartedServer(http.HandlerFunc(st.serve))
	st.ts.Listener = l
	st.ts.Start()
	return st
}

// Close stops the server.
func (st *Storage) Close() {
	st.ts.Close()
	st.Server.Stop()
}

// Endpoint is the JSON API's base URL, for option.WithEndpoint.
func (st *Storage) Endpoint() string { return st.URL + "/storage/v1/" }

// Open reads an object, for Options.Objects.
func (st *Storage) Open(bucket, object string) (io.ReadCloser, error) {
	o, err := st.Server.GetObject(bucket, object)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(o.Content)), nil
}

// Objects lists every object as bucket/name.
func (st *Storage) Objects() []string {
	out := []string{}
	for _, b := range st.Buckets() {
		objs, _, err := st.Server.ListObjects(b, "", "", false)
		if err != nil {
			continue
		}
		for _, o := range objs {
			out = append(out, b+"/"+o.Name)
		}
	}
	slices.Sort(out)
	return out
}

// Buckets lists the buckets.
func (st *Storage) Buckets() []string {
	bs, err := st.Server.Backend().ListBuckets()
	if err != nil {
		return nil
	}
	var out []string
	for _, b := range bs {
		out = append(out, b.Name)
	}
	slices.Sort(out)
	return out
}

// Inject adds a fault: Method is one of storage.buckets.get, .insert,
// .delete, storage.objects.insert (starting an upload), storage.uploads.put
// (a chunk of a resumable upload), storage.objects.get, .delete.
func (st *Storage) Inject(f Fault) {
	st.mu.Lock()
	defer st.mu.Unlock()
	f.base = st.counts[f.Method]
	st.faults = append(st.faults, &f)
}

// ClearFaults removes every fault.
func (st *Storage) ClearFaults() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.faults = nil
}

// Calls are the methods called so far; Mutations those that change
// something.
func (st *Storage) Calls() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.calls)
}

func (st *Storage) Mutations() []string {
	var out []string
	for _, c := range st.Calls() {
		if mutating(c) || c == "storage.uploads.put" {
			out = append(out, c)
		}
	}
	return out
}

// method names a request as the JSON API's methods.
func method(r *http.Request) string {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/upload/resumable/"), strings.HasPrefix(p, "/upload/storage/v1/") && r.URL.Query().Get("upload_id") != "":
		if r.Method == http.MethodDelete {
			return "storage.uploads.delete"
		}
		return "storage.uploads.put"
	case strings.HasPrefix(p, "/upload/storage/v1/b/"):
		return "storage.objects.insert"
	case strings.HasPrefix(p, "/storage/v1/b/") && strings.Contains(p, "/o/"):
		switch r.Method {
		case http.MethodDelete:
			return "storage.objects.delete"
		case http.MethodPatch, http.MethodPut:
			return "storage.objects.patch"
		}
		return "storage.objects.get"
	case strings.HasSuffix(p, "/o") && strings.HasPrefix(p, "/storage/v1/b/"):
		return "storage.objects.list"
	case p == "/storage/v1/b" || p == "/storage/v1/b/":
		if r.Method == http.MethodPost {
			return "storage.buckets.insert"
		}
		return "storage.buckets.list"
	case strings.HasPrefix(p, "/storage/v1/b/"):
		switch r.Method {
		case http.MethodDelete:
			return "storage.buckets.delete"
		case http.MethodPatch:
			return "storage.buckets.patch"
		}
		return "storage.buckets.get"
	}
	return r.Method + " " + p
}

func (st *Storage) serve(w http.ResponseWriter, r *http.Request) {
	m := method(r)
	if st.auth != nil && !st.auth(r) {
		writeJSON(w, 401, map[string]any{"error": newError(401, "required", "Anonymous caller does not have storage access. Check the Authorization header.")})
		return
	}
	st.mu.Lock()
	st.calls = append(st.calls, m)
	st.counts[m]++
	n := st.counts[m]
	var f *Fault
	for _, x := range st.faults {
		if x.Method == m && (x.Call == 0 || n-x.base == x.Call) {
			f = x
		}
	}
	st.mu.Unlock()
	if f != nil && !f.Apply {
		writeJSON(w, f.status(), map[string]any{"error": newError(f.status(), "backendError", "Injected fault: %s call %d", m, n)})
		return
	}
	if f != nil {
		rec := httptest.NewRecorder()
		st.Server.HTTPHandler().ServeHTTP(rec, r)
		writeJSON(w, f.status(), map[string]any{"error": newError(f.status(), "backendError", "Injected fault after the call took effect: %s call %d (it answered %d)", m, n, rec.Code)})
		return
	}
	st.Server.HTTPHandler().ServeHTTP(w, r)
}
