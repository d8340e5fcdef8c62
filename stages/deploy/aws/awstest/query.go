package awstest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// params are an EC2 Query request's parameters, with the protocol's
// flattened lists (Filter.1.Name, Filter.1.Value.1, ...).
type params map[string]string

func parseQuery(body []byte) (params, error) {
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, err
	}
	p := params{}
	for k, vs := range v {
		if len(vs) != 1 {
			return nil, fmt.Errorf("parameter %s given %d times", k, len(vs))
		}
		p[k] = vs[0]
	}
	return p, nil
}

func (p params) has(k string) bool { _, ok := p[k]; return ok }

// sub returns the members of list prefix (prefix.1.*, prefix.2.*, ...) in
// order, each with its own keys.
func (p params) sub(prefix string) []params {
	byN := map[int]params{}
	for k, v := range p {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		ns, key, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(ns)
		if err != nil || n < 1 {
			continue
		}
		if byN[n] == nil {
			byN[n] = params{}
		}
		byN[n][key] = v
	}
	var ns []int
	for n := range byN {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	out := make([]params, 0, len(ns))
	for _, n := range ns {
		out = append(out, byN[n])
	}
	return out
}

// list returns the values of a list of scalars: prefix.1, prefix.2, ...
func (p params) list(prefix string) []string {
	byN := map[int]string{}
	for k, v := range p {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(rest); err == nil && n >= 1 {
			byN[n] = v
		}
	}
	var ns []int
	for n := range byN {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		out = append(out, byN[n])
	}
	return out
}

func (p params) required(names ...string) *apiError {
	for _, n := range names {
		if p[n] == "" {
			return errf(400, "MissingParameter", "The request must contain the parameter %s", n)
		}
	}
	return nil
}

func (p params) integer(name string) (int, *apiError) {
	n, err := strconv.Atoi(p[name])
	if err != nil {
		return 0, errf(400, "InvalidParameterValue", "Invalid value '%s' for %s: not an integer", p[name], name)
	}
	return n, nil
}

func (p params) boolean(name string) (bool, *apiError) {
	switch p[name] {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, errf(400, "InvalidParameterValue", "Invalid value '%s' for %s: not a boolean", p[name], name)
}

// filter is one Filter.N of a Describe call.
type filter struct {
	Name   string
	Values []string
}

// filters reads Filter.N, rejecting names that known does not take (as
// EC2 does).
func (p params) filters(known func(string) bool) ([]filter, *apiError) {
	var out []filter
	for _, f := range p.sub("Filter") {
		name := f["Name"]
		if name == "" {
			return nil, errf(400, "InvalidParameterValue", "A filter must have a Name")
		}
		if !strings.HasPrefix(name, "tag:") && name != "tag-key" && !known(name) {
			return nil, errf(400, "InvalidParameterValue", "The filter '%s' is invalid", name)
		}
		out = append(out, filter{Name: name, Values: f.list("Value")})
	}
	return out, nil
}

// match applies filters to a resource: value gives the resource's values
// of a filter name.
func match(fs []filter, t tags, value func(name string) []string) bool {
	for _, f := range fs {
		var have []string
		switch {
		case strings.HasPrefix(f.Name, "tag:"):
			if v, ok := t.get(strings.TrimPrefix(f.Name, "tag:")); ok {
				have = []string{v}
			}
		case f.Name == "tag-key":
			for _, x := range t {
				have = append(have, x.Key)
			}
		default:
			have = value(f.Name)
		}
		ok := false
		for _, v := range f.Values {
			if slices.Contains(have, v) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// tagSpecs reads TagSpecification.N: the tags for resourceType; other
// resource types are refused unless allowed lists them.
func (p params) tagSpecs(resourceType string, allowed ...string) (tags, bool, *apiError) {
	var out tags
	any := false
	for _, ts := range p.sub("TagSpecification") {
		rt := ts["ResourceType"]
		if rt != resourceType && !slices.Contains(allowed, rt) {
			return nil, false, errf(400, "InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", rt)
		}
		for _, t := range ts.sub("Tag") {
			if t["Key"] == "" {
				return nil, false, errf(400, "InvalidParameterValue", "Tag keys must not be empty")
			}
			if strings.HasPrefix(t["Key"], "aws:") {
				return nil, false, errf(400, "InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
			}
			any = true
			if rt == resourceType {
				out = append(out, tag{t["Key"], t["Value"]})
			}
		}
	}
	return out, any, nil
}

// xb writes an XML document element by element.
type xb struct{ b strings.Builder }

func (x *xb) open(name string)  { x.b.WriteString("<" + name + ">") }
func (x *xb) close(name string) { x.b.WriteString("</" + name + ">") }
func (x *xb) leaf(name, v string) {
	x.open(name)
	_ = xml.EscapeText(&x.b, []byte(v))
	x.close(name)
}
func (x *xb) tags(t tags) {
	x.open("tagSet")
	for _, tg := range t {
		x.open("item")
		x.leaf("key", tg.Key)
		x.leaf("value", tg.Value)
		x.close("item")
	}
	x.close("tagSet")
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func writeEC2(w http.ResponseWriter, action string, body func(x *xb)) {
	var x xb
	x.b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	x.b.WriteString(`<` + action + `Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">`)
	x.leaf("requestId", requestID())
	body(&x)
	x.close(action + "Response")
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(200)
	_, _ = w.Write([]byte(x.b.String()))
}

func writeEC2Error(w http.ResponseWriter, e *apiError) {
	var x xb
	x.b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	x.open("Response")
	x.open("Errors")
	x.open("Error")
	x.leaf("Code", e.Code)
	x.leaf("Message", e.Message)
	x.close("Error")
	x.close("Errors")
	x.leaf("RequestID", requestID())
	x.close("Response")
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(e.Status)
	_, _ = w.Write([]byte(x.b.String()))
}
