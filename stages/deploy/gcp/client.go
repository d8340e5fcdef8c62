package gcp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"cloud.google.com/go/auth/credentials"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/option"
	storage "google.golang.org/api/storage/v1"
)

// Environment variables that point the clients at other endpoints than
// Google's public ones (a Private Service Connect endpoint, an emulator);
// credentials are still the Application Default Credentials.
const (
	EnvComputeEndpoint = "UNIKFILE_GCP_COMPUTE_ENDPOINT"
	EnvStorageEndpoint = "UNIKFILE_GCP_STORAGE_ENDPOINT"
)

// adcHint ends errors about missing or refused credentials.
const adcHint = "give unikfile Application Default Credentials: `gcloud auth application-default login`, " +
	"GOOGLE_APPLICATION_CREDENTIALS=/path/to/service-account-key.json, or run it on a GCE VM with a service account"

// services are the API clients, made once per provider.
type services struct {
	compute *compute.Service
	storage *storage.Service
}

// clients returns the provider's API clients, creating them the first
// time; a failure is not kept, so a later call tries again.
func (p *Provider) clients(ctx context.Context) (*services, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.svc != nil {
		return p.svc, nil
	}
	copts := []option.ClientOption{option.WithUserAgent(userAgent)}
	if ep := p.getenv(EnvComputeEndpoint); ep != "" {
		copts = append(copts, option.WithEndpoint(ep))
	}
	copts = append(copts, p.ComputeOptions...)
	// Background: the clients outlive the call that made them.
	c, err := compute.NewService(context.WithoutCancel(ctx), copts...)
	if err != nil {
		return nil, credentialsError("Compute Engine", err)
	}
	sopts := []option.ClientOption{option.WithUserAgent(userAgent)}
	if ep := p.getenv(EnvStorageEndpoint); ep != "" {
		sopts = append(sopts, option.WithEndpoint(ep))
	}
	sopts = append(sopts, p.StorageOptions...)
	s, err := storage.NewService(context.WithoutCancel(ctx), sopts...)
	if err != nil {
		return nil, credentialsError("Cloud Storage", err)
	}
	p.svc = &services{compute: c, storage: s}
	return p.svc, nil
}

const userAgent = "unikfile"

func credentialsError(api string, err error) error {
	return fmt.Errorf("cannot make a %s client: %w; %s", api, err, adcHint)
}

func (p *Provider) getenv(k string) string {
	if p.Getenv != nil {
		return p.Getenv(k)
	}
	return os.Getenv(k)
}

// resolveProject is the project of s: its own, else the environment's
// (GOOGLE_CLOUD_PROJECT, CLOUDSDK_CORE_PROJECT), else that of a credentials
// file (GOOGLE_APPLICATION_CREDENTIALS or gcloud's application default
// credentials), else gcloud's configured project, else the metadata
// server's (on GCE).
func (p *Provider) resolveProject(ctx context.Context, s *Settings) (string, error) {
	if s.Project != "" {
		return s.Project, nil
	}
	for _, k := range []string{"GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"} {
		if v := p.getenv(k); v != "" {
			return v, nil
		}
	}
	fromCreds := func() string {
		creds, err := credentials.DetectDefault(&credentials.DetectOptions{Scopes: []string{compute.CloudPlatformScope}})
		if err != nil {
			return ""
		}
		id, _ := creds.ProjectID(ctx)
		return id
	}
	if p.credentialsFile() != "" {
		if id := fromCreds(); id != "" {
			return id, nil
		}
	}
	if id := p.gcloudProject(); id != "" {
		return id, nil
	}
	if p.credentialsFile() == "" {
		if id := fromCreds(); id != "" {
			return id, nil
		}
	}
	return "", errors.New("no GCP project: set project in the target's gcp block, set GOOGLE_CLOUD_PROJECT, or `gcloud config set project PROJECT`")
}

// gcloudDir is gcloud's configuration directory.
func (p *Provider) gcloudDir() string {
	if d := p.getenv("CLOUDSDK_CONFIG"); d != "" {
		return d
	}
	home := p.getenv("HOME")
	if home == "" {
		return ""
	}
	return filepath.Join(home, ".config", "gcloud")
}

// credentialsFile is the credentials file ADC reads, or "".
func (p *Provider) credentialsFile() string {
	if f := p.getenv("GOOGLE_APPLICATION_CREDENTIALS"); f != "" {
		return f
	}
	if d := p.gcloudDir(); d != "" {
		f := filepath.Join(d, "application_default_credentials.json")
		if _, err := os.Stat(f); err == nil {
			return f
		}
	}
	return ""
}

// gcloudProject is core/project of gcloud's active configuration.
func (p *Provider) gcloudProject() string {
	dir := p.gcloudDir()
	if dir == "" {
		return ""
	}
	name := p.getenv("CLOUDSDK_ACTIVE_CONFIG_NAME")
	if name == "" {
		b, _ := os.ReadFile(filepath.Join(dir, "active_config"))
		name = strings.TrimSpace(string(b))
	}
	if name == "" {
		name = "default"
	}
	f, err := os.Open(filepath.Join(dir, "configurations", "config_"+name))
	if err != nil {
		return ""
	}
	defer f.Close()
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.TrimSpace(line[1 : len(line)-1])
		case section == "core":
			k, v, ok := strings.Cut(line, "=")
			if ok && strings.TrimSpace(k) == "project" {
				return strings.TrimSpace(v)
			}
		}
	}
	return ""
}
