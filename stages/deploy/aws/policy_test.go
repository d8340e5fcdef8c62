package aws

import (
	"encoding/json"
	"os"
	"testing"
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
