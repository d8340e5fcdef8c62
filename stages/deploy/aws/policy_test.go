package aws

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/unikfile/unikfile/stages/deploy/aws/awstest"
)

// policyActions reads the IAM actions of iam-policy.json, the policy the
// README gives users.
func policyActions(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("iam-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Statement []struct {
			Effect string
			Action []string
		}
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("iam-policy.json: %v", err)
	}
	var out []string
	for _, s := range doc.Statement {
		if s.Effect == "Allow" {
			out = append(out, s.Action...)
		}
	}
	return out
}

// TestREADMEPolicyIsEnough: with only the README's policy allowed, up and
// down work; the README shows the policy as the file has it.
func TestREADMEPolicyIsEnough(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	policy, _ := os.ReadFile("iam-policy.json")
	if !strings.Contains(string(readme), strings.TrimSpace(string(policy))) {
		t.Error("README.md does not show iam-policy.json as it is")
	}
	srv, p := endpoint(t, awstest.Options{})
	srv.Allow(policyActions(t))
	dir, img := smallDisk(t, "policy")
	sp, _ := spec(t, dir, img, withSettings(&Settings{Region: awstest.Region, InstanceType: "t3.micro", Ingress: []string{"0.0.0.0/0"}}))
	inst, err := p.Boot(ctxT(t), sp)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Refresh(ctxT(t), inst); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(ctxT(t), inst); err != nil {
		t.Fatal(err)
	}
	empty(t, srv)
	for _, c := range srv.Calls() {
		if c.Error == "UnauthorizedOperation" || c.Error == "AccessDeniedException" {
			t.Errorf("%s was denied under the README's policy", c.Action)
		}
	}
}
