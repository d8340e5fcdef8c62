package aws

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/unikfile/unikfile/stages/deploy/aws/awstest"
	"github.com/unikfile/unikfile/state"
)

// TestBootFaults injects a failure at every step of a boot. A retryable
// one (throttling, a 5xx that passes) is retried and the boot succeeds; any
// other fails the boot at once with an error naming the API action, and
// afterwards the inventory holds nothing and the run directory is gone.
func TestBootFaults(t *testing.T) {
	exit3 := 3
	cases := []struct {
		name   string
		setup  func(*awstest.Server)
		guest  func(awstest.Launch) awstest.Guest
		ok     bool   // the boot succeeds anyway
		errHas string // else its error says
	}{
		{name: "throttled blocks are retried", ok: true, setup: func(s *awstest.Server) {
			s.Inject(&awstest.Fault{Action: "PutSnapshotBlock", Times: 4, Code: "RequestThrottledException", Message: "Rate exceeded"})
		}},
		{name: "a 503 on CompleteSnapshot is retried", ok: true, setup: func(s *awstest.Server) {
			s.Inject(&awstest.Fault{Action: "CompleteSnapshot", Times: 1, Code: "InternalServerException", Status: 503})
		}},
		{name: "EC2 throttling is retried", ok: true, setup: func(s *awstest.Server) {
			s.Inject(&awstest.Fault{Action: "RunInstances", Times: 2, Code: "RequestLimitExceeded", Message: "Request limit exceeded."})
		}},
		{name: "a block that keeps failing", errHas: "PutSnapshotBlock", setup: func(s *awstest.Server) {
			s.Inject(&awstest.Fault{Action: "PutSnapshotBlock", After: 1, Code: "InternalServerException"})
		}},
		{name: "a block refused", errHas: "ValidationException", setup: func(s *awstest.Server) {
			s.Inject(&awstest.Fault{Action: "PutSnapshotBlock", After: 1, Times: 1, Code: "ValidationException", Message: "bad block"})
		}},
		{name: "StartSnapshot fails", errHas: "StartSnapshot", setup: func(s *awstest.Server) {
			s.Inject(&awstest.Fault{Action: "StartSnapshot", Code: "ServiceQuotaExceededException", Status: 402})
		}},
		{name: "the snapshot ends in error", errHas: "ended in state error", setup: func(s *awstest.Server) {
			s.FailSnapshots("internal error while sealing")
		}},
		{name: "RegisterImage fails", errHas: "RegisterImage", setup: func(s *awstest.Server) {
			s.Inject(&awstest.Fault{Action: "RegisterImage", Code: "InvalidParameterValue", Message: "nope"})
		}},
		{name: "the AMI fails", errHas: "ended in state failed", setup: func(s *awstest.Server) {
			s.FailImages("could not create the image")
		}},
		{name: "the security group cannot be made", errHas: "CreateSecurityGroup", setup: func(s *awstest.Server) {
			s.Inject(&awstest.Fault{Action: "CreateSecurityGroup", Code: "SecurityGroupLimitExceeded"})
		}},
		{name: "RunInstances fails", errHas: "InsufficientInstanceCapacity", setup: func(s *awstest.Server) {
			s.Inject(&awstest.Fault{Action: "RunInstances", Code: "InsufficientInstanceCapacity", Message: "We currently do not have sufficient t3.micro capacity"})
		}},
		{name: "the console cannot be read", errHas: "GetConsoleOutput", setup: func(s *awstest.Server) {
			s.Inject(&awstest.Fault{Action: "GetConsoleOutput", Code: "InvalidParameterValue"})
		}},
		{name: "the app never gets ready", errHas: "was not ready after", guest: func(l awstest.Launch) awstest.Guest {
			return awstest.Guest{Console: "unikfile-init: address " + l.PrivateIP + "/20 via dhcp\r\n"}
		}},
		{name: "a denied action", errHas: "ec2:RunInstances", setup: func(s *awstest.Server) {
			var all []string
			for _, a := range policyActions(t) {
				if a != "ec2:RunInstances" {
					all = append(all, a)
				}
			}
			s.Allow(all)
		}},
		{name: "the app exits before it is ready", errHas: "exited with status 3", guest: func(l awstest.Launch) awstest.Guest {
			return awstest.Guest{Console: "unikfile-init: address " + l.PrivateIP + "/20 via dhcp\r\nunikfile-init: exit status 3\r\n", Exit: &exit3}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, p := endpoint(t, awstest.Options{Guest: tc.guest, Lag: 100 * time.Millisecond})
			if tc.setup != nil {
				tc.setup(srv)
			}
			dir, img := smallDisk(t, tc.name)
			sp, msgs := spec(t, dir, img)
			sp.Timeout = 2 * time.Second
			start := time.Now()
			inst, err := p.Boot(ctxT(t), sp)
			if tc.ok {
				if err != nil {
					t.Fatalf("Boot: %v\n%s", err, msgs)
				}
				srv.ClearFaults()
				if err := p.Stop(ctxT(t), inst); err != nil {
					t.Fatal(err)
				}
				empty(t, srv)
				return
			}
			if err == nil {
				t.Fatalf("Boot succeeded; want an error saying %q", tc.errHas)
			}
			t.Logf("boot error: %v", err)
			if !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("error does not say %q:\n%v", tc.errHas, err)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("the failed boot took %s", d)
			}
			empty(t, srv)
			if inst != nil {
				if inst.State != state.Exited || inst.ExitStatus == nil || *inst.ExitStatus != 3 {
					t.Errorf("returned instance %+v", inst)
				}
				b, _ := os.ReadFile(filepath.Join(sp.RunDir, ConsoleFile))
				if !strings.Contains(string(b), "exit status 3") {
					t.Errorf("the console kept for logs: %q", b)
				}
				// Later, `up` or `down` removes the record: nothing left to do.
				srv.ResetCalls()
				if err := p.Stop(ctxT(t), inst); err != nil {
					t.Fatal(err)
				}
				empty(t, srv)
				return
			}
			if _, err := os.Stat(sp.RunDir); !os.IsNotExist(err) {
				t.Errorf("the failed boot left its run directory (%v)", err)
			}
		})
	}
}
