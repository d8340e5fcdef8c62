package aws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"

	"github.com/unikfile/unikfile/stages/deploy/aws/awstest"
	"github.com/unikfile/unikfile/state"
)

// laterExit is a guest stand-in that becomes ready, then its app exits
// with status 7 and it powers off.
func laterExit(after time.Duration) func(awstest.Launch) awstest.Guest {
	seven := 7
	return func(l awstest.Launch) awstest.Guest {
		g := awstest.DefaultGuest(l)
		g.Then, g.After, g.Exit = "app: bye\r\nunikfile-init: exit status 7\r\n", after, &seven
		return g
	}
}

// TestRefreshReadsOnlyAndSeesTheExit: while the app runs, Refresh leaves a
// running instance running and calls nothing that changes anything; once
// the guest's app exits and the instance stops, the instance is exited
// with the status from its console. Logs prints the console.
func TestRefreshReadsOnlyAndSeesTheExit(t *testing.T) {
	srv, p := endpoint(t, awstest.Options{Guest: laterExit(700 * time.Millisecond)})
	dir, img := smallDisk(t, "refresh")
	sp, _ := spec(t, dir, img)
	inst, err := p.Boot(ctxT(t), sp)
	if err != nil {
		t.Fatal(err)
	}
	srv.ResetCalls()
	if err := p.Refresh(ctxT(t), inst); err != nil || inst.State != state.Running {
		t.Fatalf("Refresh of a running instance: %v, state %s", err, inst.State)
	}
	for _, c := range srv.Calls() {
		if c.Mutating() {
			t.Errorf("Refresh called %s", c.Action)
		}
	}
	var logs bytes.Buffer
	if err := p.Logs(ctxT(t), inst, false, &logs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "unikfile-init: ready\n") || strings.Contains(logs.String(), "\r") {
		t.Errorf("logs: %q", logs.String())
	}
	var follow bytes.Buffer
	if err := p.Logs(ctxT(t), inst, true, &follow); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(follow.String(), "unikfile-init: exit status 7\n") {
		t.Errorf("logs -f did not follow to the exit: %q", follow.String())
	}
	deadline := time.Now().Add(5 * time.Second)
	for inst.State != state.Exited && time.Now().Before(deadline) {
		if err := p.Refresh(ctxT(t), inst); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if inst.State != state.Exited || inst.ExitStatus == nil || *inst.ExitStatus != 7 {
		t.Fatalf("after the app exited: state %s, status %v", inst.State, inst.ExitStatus)
	}
	if err := p.Stop(ctxT(t), inst); err != nil {
		t.Fatal(err)
	}
	if inst.State != state.Exited {
		t.Errorf("Stop of an exited instance made it %s", inst.State)
	}
	empty(t, srv)
}

// TestBootAttachedReturnsTheExit: attached, console lines go to the writer
// and Boot returns with the app's exit status.
func TestBootAttachedReturnsTheExit(t *testing.T) {
	srv, p := endpoint(t, awstest.Options{Guest: laterExit(300 * time.Millisecond)})
	dir, img := smallDisk(t, "attach")
	sp, _ := spec(t, dir, img)
	var out bytes.Buffer
	sp.Attach, sp.Console = true, &out
	inst, err := p.Boot(ctxT(t), sp)
	if err != nil {
		t.Fatal(err)
	}
	if inst.State != state.Exited || *inst.ExitStatus != 7 || !strings.Contains(out.String(), "app: bye") {
		t.Errorf("attached boot: state %s, console %q", inst.State, out.String())
	}
	if err := p.Stop(ctxT(t), inst); err != nil {
		t.Fatal(err)
	}
	empty(t, srv)
}

// TestStopCleansUpAfterABootThatDied: a boot killed during its upload
// leaves a pending snapshot and its journal. Stop of its record (no
// config: the booter never recorded one) finds the snapshot by its tags
// and deletes it; a later boot of the app works.
func TestStopCleansUpAfterABootThatDied(t *testing.T) {
	srv, p := endpoint(t, awstest.Options{})
	dir, img := smallDisk(t, "killed")
	sp, _ := spec(t, dir, img)
	// The boot "dies" at its second block: the hook cancels it without
	// any cleanup running (as a SIGKILL would), by blocking the client.
	died := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	srv.OnCall(func(action string) {
		if action == "PutSnapshotBlock" {
			if n.Add(1) == 2 {
				close(died)
				<-ctx.Done()
			}
		}
	})
	go func() { _, _ = p.Boot(ctx, sp) }()
	<-died
	// What a SIGKILL leaves: the record as `up` put it, the run directory.
	journalCopy, err := os.ReadFile(filepath.Join(sp.RunDir, JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	srv.OnCall(nil)
	time.Sleep(200 * time.Millisecond) // let the cancelled boot's own cleanup finish
	// Put back what that cleanup removed, as if it never ran.
	if err := os.MkdirAll(sp.RunDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sp.RunDir, JournalFile), journalCopy, 0o600); err != nil {
		t.Fatal(err)
	}
	rec := &Record{}
	if err := jsonUnmarshal(journalCopy, rec); err != nil || rec.SnapshotID == "" {
		t.Fatalf("journal %s: %v", journalCopy, err)
	}
	leftover := startSnapshotLike(t, srv, p, sp.ID, img.Digest)

	inst := &state.Instance{ID: sp.ID, Project: sp.Project, Target: "prod", App: "hello", Provider: Name, ImageDigest: img.Digest, RunDir: sp.RunDir, State: state.Starting}
	if err := p.Refresh(ctxT(t), inst); err != nil || inst.State != state.Starting {
		t.Errorf("Refresh of a boot that died mid-upload: %v, %s", err, inst.State)
	}
	inst.Config = nil
	if err := p.Stop(ctxT(t), inst); err != nil {
		t.Fatal(err)
	}
	for _, r := range srv.Inventory() {
		if r.ID == leftover {
			t.Errorf("Stop left the dead boot's snapshot %s", leftover)
		}
	}
	empty(t, srv)
	sp2, _ := spec(t, dir, img)
	again, err := p.Boot(ctxT(t), sp2)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(ctxT(t), again); err != nil {
		t.Fatal(err)
	}
	empty(t, srv)
}

// startSnapshotLike starts a pending snapshot tagged as the boot of id
// makes them (what its killed upload would leave).
func startSnapshotLike(t *testing.T, srv *awstest.Server, p *Provider, id, digest string) string {
	t.Helper()
	c, err := p.clientsFor(ctxT(t), awstest.Region)
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := smallDisk(t, "x")
	res, err := upload(ctxT(t), c, Upload{Path: filepath.Join(dir, "disk.raw"), Tags: map[string]string{TagManaged: "true", TagInstance: id, TagDigest: digest},
		Token: "leftover", Concurrency: 1, Poll: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return res.SnapshotID
}

// TestErrorsSayWhatToDo: a region AWS does not serve, one whose endpoint
// does not exist, rejected credentials, no region at all.
func TestErrorsSayWhatToDo(t *testing.T) {
	srv, p := endpoint(t, awstest.Options{})
	dir, img := smallDisk(t, "err")
	s := settings()
	s.Region = "eu-wst-9"
	sp, _ := spec(t, dir, img, withSettings(s))
	_, err := p.Boot(ctxT(t), sp)
	if err == nil || !strings.Contains(err.Error(), `"eu-wst-9" is not a valid AWS region`) {
		t.Errorf("a region the endpoint does not serve: %v", err)
	}
	empty(t, srv)

	dnsErr := &smithy.OperationError{ServiceID: "EC2", OperationName: "DescribeImages",
		Err: fmt.Errorf("send: %w", &net.DNSError{Err: "no such host", Name: "ec2.eu-wst-9.amazonaws.com", IsNotFound: true})}
	if got := explain("eu-wst-9", dnsErr).Error(); !strings.Contains(got, `"eu-wst-9" is not an AWS region`) || !strings.Contains(got, "DescribeImages") {
		t.Errorf("a region whose endpoint does not resolve: %s", got)
	}

	p.Credentials = awssdk.CredentialsProviderFunc(func(context.Context) (awssdk.Credentials, error) {
		return awssdk.Credentials{AccessKeyID: "AKIAOTHER", SecretAccessKey: "x"}, nil
	})
	p.clients = nil
	sp2, _ := spec(t, dir, img)
	if _, err := p.Boot(ctxT(t), sp2); err == nil || !strings.Contains(err.Error(), "rejected the credentials") {
		t.Errorf("unknown credentials: %v", err)
	}

	p.Credentials, p.clients = nil, nil // the default chain, which finds none here
	sp4, _ := spec(t, dir, img)
	if _, err := p.Boot(ctxT(t), sp4); err == nil || !strings.Contains(err.Error(), "no AWS credentials: set AWS_ACCESS_KEY_ID") {
		t.Errorf("no credentials anywhere: %v", err)
	}

	p.clients = nil
	sp3, _ := spec(t, dir, img, withSettings(DefaultSettings()))
	if _, err := p.Boot(ctxT(t), sp3); err == nil || !strings.Contains(err.Error(), "no region") || !strings.Contains(err.Error(), "AWS_REGION") {
		t.Errorf("no region anywhere: %v", err)
	}
	var ae smithy.APIError
	_ = errors.As(err, &ae)
}

// TestStopRemovesWhatTheJournalNames: EC2's listings do not show a
// snapshot started a moment ago (Lag); Stop of a boot that died right
// after starting it deletes it by the ID its journal holds.
func TestStopRemovesWhatTheJournalNames(t *testing.T) {
	srv, p := endpoint(t, awstest.Options{Lag: time.Hour})
	c, err := p.clientsFor(ctxT(t), awstest.Region)
	if err != nil {
		t.Fatal(err)
	}
	dir, img := smallDisk(t, "journal")
	var snap string
	res, err := upload(ctxT(t), c, Upload{Path: filepath.Join(dir, "disk.raw"), Token: "j", Concurrency: 2, Poll: time.Millisecond,
		Tags:    map[string]string{TagManaged: "true", TagInstance: "hello-0123456789"},
		Started: func(id string) error { snap = id; return errors.New("killed") }})
	if err == nil || res.SnapshotID != snap {
		t.Fatalf("upload: %v", err)
	}
	runDir := filepath.Join(t.TempDir(), "hello-0123456789")
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := journal(runDir, &Record{Region: awstest.Region, SnapshotID: snap, Created: []string{snap}}); err != nil {
		t.Fatal(err)
	}
	inst := &state.Instance{ID: "hello-0123456789", Project: "/p", Target: "prod", App: "hello", Provider: Name, ImageDigest: img.Digest, RunDir: runDir, State: state.Starting}
	if err := p.Stop(ctxT(t), inst); err != nil {
		t.Fatal(err)
	}
	empty(t, srv)
}
