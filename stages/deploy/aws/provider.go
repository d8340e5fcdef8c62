package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/unikfile/unikfile/internal/atomicfile"
	"github.com/unikfile/unikfile/stages/deploy"
	"github.com/unikfile/unikfile/state"
)

// Name is the provider's name in a target's `provider` attribute.
const Name = "aws"

// Defaults of the provider's knobs.
const (
	DefaultTimeout     = 10 * time.Minute
	DefaultPoll        = 3 * time.Second
	DefaultConcurrency = 16
	DefaultAttempts    = 8
	DefaultMaxBackoff  = 20 * time.Second
	// cleanupTimeout bounds the wait for an instance to terminate before
	// what it used can be deleted.
	cleanupTimeout = 10 * time.Minute
)

// Files in an instance's run directory.
const (
	// JournalFile holds the Record as it grows during Boot.
	JournalFile = "aws.json"
	// ConsoleFile is the console as last read, kept when the instance
	// is gone.
	ConsoleFile = "console.log"
)

// Provider runs images on EC2. The zero value (with New's env) uses the
// SDK's default configuration.
type Provider struct {
	// Endpoint, when set, is the BaseEndpoint of both clients (a test
	// endpoint); otherwise the SDK's own resolution applies, which honours
	// AWS_ENDPOINT_URL.
	Endpoint string
	// Credentials, when set, replace the default credential chain.
	Credentials awssdk.CredentialsProvider
	// Poll is how often console and states are polled (DefaultPoll).
	Poll time.Duration
	// Concurrency bounds PutSnapshotBlock calls in flight
	// (DefaultConcurrency); Attempts and MaxBackoff shape each call's
	// retries (DefaultAttempts, DefaultMaxBackoff).
	Concurrency int
	Attempts    int
	MaxBackoff  time.Duration

	mu      sync.Mutex
	clients map[string]*clients
}

// New is the registry's constructor.
func New(env deploy.Env) (deploy.Provider, error) { return &Provider{}, nil }

var _ deploy.Provider = (*Provider)(nil)

func (p *Provider) poll() time.Duration {
	if p.Poll > 0 {
		return p.Poll
	}
	return DefaultPoll
}

// clients are the API clients of one region.
type clients struct {
	region string
	ec2    *ec2.Client
	ebs    *ebs.Client
}

// clientsFor returns the clients of region ("" for the default chain's),
// made once per provider and region.
func (p *Provider) clientsFor(ctx context.Context, region string) (*clients, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[region]; ok {
		return c, nil
	}
	attempts, backoff := p.Attempts, p.MaxBackoff
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	if backoff <= 0 {
		backoff = DefaultMaxBackoff
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() awssdk.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				o.MaxBackoff = backoff
				// Every block waits its own backoff; a shared token bucket
				// would fail a whole upload after a burst of throttling.
				o.RateLimiter = ratelimit.None
			})
		}),
	}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if p.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(p.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("aws: load the SDK's configuration: %w; check AWS_PROFILE, AWS_CONFIG_FILE and ~/.aws/config", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("aws: no region: set region in the target's aws block (aws { region = \"eu-west-1\" }), or AWS_REGION, or a region in the AWS profile")
	}
	if p.Endpoint != "" {
		cfg.BaseEndpoint = awssdk.String(p.Endpoint)
	}
	c := &clients{region: cfg.Region, ec2: ec2.NewFromConfig(cfg), ebs: ebs.NewFromConfig(cfg)}
	if p.clients == nil {
		p.clients = map[string]*clients{}
	}
	p.clients[region] = c
	return c, nil
}

// Record is what the provider keeps of an instance (inst.Config): where it
// runs and what its boot created. It holds no credentials.
type Record struct {
	Region       string `json:"region"`
	InstanceType string `json:"instance_type"`
	Subnet       string `json:"subnet,omitempty"`
	VPC          string `json:"vpc,omitempty"`
	InstanceID   string `json:"instance_id,omitempty"`
	ImageID      string `json:"image_id,omitempty"`
	SnapshotID   string `json:"snapshot_id,omitempty"`
	GroupID      string `json:"security_group_id,omitempty"`
	// Created lists the AMI, snapshot and security group IDs this boot
	// created (the rest it found and reused).
	Created []string `json:"created,omitempty"`
	// Address is where the app is reached: the public IPv4 address, else
	// the private one.
	Address   string   `json:"address,omitempty"`
	PrivateIP string   `json:"private_ip,omitempty"`
	Ports     []int    `json:"ports,omitempty"`
	Ingress   []string `json:"ingress"`
	// Terminated says unikfile terminated the instance (an exit before
	// readiness, or Stop): the console is then in the run directory.
	Terminated bool `json:"terminated,omitempty"`
}

// recordOf reads the instance's record: its Config, else the run
// directory's journal (a boot that died before recording it). ok is false
// when neither exists: nothing was created.
func recordOf(inst *state.Instance) (*Record, bool, error) {
	raw := []byte(inst.Config)
	if len(raw) == 0 && inst.RunDir != "" {
		b, err := os.ReadFile(filepath.Join(inst.RunDir, JournalFile))
		if errors.Is(err, os.ErrNotExist) {
			return &Record{}, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("instance %s: %w", inst.ID, err)
		}
		raw = b
	}
	if len(raw) == 0 {
		return &Record{}, false, nil
	}
	var r Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, false, fmt.Errorf("instance %s: aws record: %w", inst.ID, err)
	}
	return &r, r.Region != "", nil
}

// journal writes rec into the run directory.
func journal(runDir string, rec *Record) error {
	return atomicfile.WriteJSON(filepath.Join(runDir, JournalFile), rec, 0o600)
}
