package buildkit

import (
	"context"
	"regexp"
	"strings"

	"github.com/unikfile/unikfile/internal/run"
)

// The default builder images are the ecosystem's official images on
// Docker Hub, at the version of the toolchain of the same language on the
// host when there is one (so that both executors compile alike), else
// their latest tag. The tag is resolved to a digest before every compile
// and the digest is part of the key.

// hostVersion runs program with args and returns the first match of re's
// first group in what it prints, or "".
func hostVersion(ctx context.Context, program string, re *regexp.Regexp, args ...string) string {
	res, err := run.Run(ctx, run.Cmd{Path: program, Args: args})
	if err != nil {
		return ""
	}
	m := re.FindStringSubmatch(string(res.Stdout) + string(res.Stderr))
	if m == nil {
		return ""
	}
	return m[1]
}

var (
	threePart    = regexp.MustCompile(`^\s*v?(\d+\.\d+\.\d+)\s*$`)
	rustcVersion = regexp.MustCompile(`^rustc (\d+\.\d+\.\d+)[ \n]`)
	pyVersion    = regexp.MustCompile(`^Python (\d+\.\d+\.\d+)\s*$`)
	javaBuild    = regexp.MustCompile(`\(build (\d+\.\d+\.\d+\+\d+)`)
	javaMajor    = regexp.MustCompile(`version "(\d+)[."]`)
)

func gccImage(ctx context.Context) string {
	if v := hostVersion(ctx, "gcc", threePart, "-dumpfullversion"); v != "" {
		return "gcc:" + v
	}
	return "gcc:latest"
}

func rustImage(ctx context.Context) string {
	if v := hostVersion(ctx, "rustc", rustcVersion, "--version"); v != "" {
		return "rust:" + v
	}
	return "rust:latest"
}

func pythonImage(ctx context.Context) string {
	if v := hostVersion(ctx, "python3", pyVersion, "--version"); v != "" {
		return "python:" + v
	}
	return "python:latest"
}

func nodeImage(ctx context.Context) string {
	if v := hostVersion(ctx, "node", threePart, "--version"); v != "" {
		return "node:" + v
	}
	return "node:latest"
}

// temurinImage is eclipse-temurin at the host JDK's version and build
// (17.0.15+6 is the tag 17.0.15_6-jdk), or its major version.
func temurinImage(ctx context.Context) string {
	if v := hostVersion(ctx, "java", javaBuild, "-version"); v != "" {
		return "eclipse-temurin:" + strings.Replace(v, "+", "_", 1) + "-jdk"
	}
	if v := hostVersion(ctx, "java", javaMajor, "-version"); v != "" {
		return "eclipse-temurin:" + v + "-jdk"
	}
	return "eclipse-temurin:latest"
}
