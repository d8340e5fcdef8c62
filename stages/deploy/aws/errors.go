package aws

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	"github.com/aws/smithy-go"
)

// tagged are the actions unikfile calls with tags at creation, which AWS
// authorizes as ec2:CreateTags as well.
var tagged = map[string]bool{"RunInstances": true, "RegisterImage": true, "CreateSecurityGroup": true, "StartSnapshot": true}

// deniedAction finds the IAM action AWS names in an access-denied message.
var deniedAction = regexp.MustCompile(`not authorized to perform: ([a-z0-9-]+:[A-Za-z0-9]+)`)

// explain turns an SDK error of an API call into one that names the call
// and says what to do: a denied action names its IAM permission, a region
// that does not exist or is not enabled says so, rejected or missing
// credentials say where they come from. region is the client's.
func explain(region string, err error) error {
	if err == nil {
		return nil
	}
	service, action := "", ""
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		service, action = strings.ToLower(oe.ServiceID), oe.OperationName
	}
	what := "aws"
	if action != "" {
		what = "aws: " + action
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code, msg := ae.ErrorCode(), ae.ErrorMessage()
		switch {
		case code == "UnauthorizedOperation" || code == "AccessDeniedException" || code == "AccessDenied":
			perm, also := service+":"+action, ""
			if m := deniedAction.FindStringSubmatch(msg); m != nil {
				perm = m[1] // AWS names the one it refused
			} else if tagged[action] {
				also = " (and ec2:CreateTags, which tagging at creation needs)"
			}
			return &explained{fmt.Sprintf("%s was denied: the credentials lack the IAM permission %s%s; add it to the policy of the IAM user or role (the README's AWS section has the whole policy)\n%s: %s", what, perm, also, code, firstSentence(msg)), err}
		case strings.Contains(msg, "scoped to a valid region"):
			return &explained{fmt.Sprintf("%s: %q is not a valid AWS region (AWS says: %s); set aws { region } or AWS_REGION to one of yours (aws ec2 describe-regions)", what, region, msg), err}
		case code == "OptInRequired" && strings.Contains(strings.ToLower(msg), "region"):
			return &explained{fmt.Sprintf("%s: region %s is not enabled for this account (%s); enable it in the account settings, or pick another region", what, region, msg), err}
		case code == "AuthFailure" || code == "UnrecognizedClientException" || code == "InvalidClientTokenId" || code == "SignatureDoesNotMatch" || code == "InvalidSignatureException":
			return &explained{fmt.Sprintf("%s: AWS rejected the credentials (%s: %s); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE (they come from the SDK's default chain)", what, code, msg), err}
		}
		return &explained{fmt.Sprintf("%s: %s: %s", what, code, msg), err}
	}
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return &explained{fmt.Sprintf("%s: %q is not an AWS region: its endpoint %s does not exist; set aws { region } or AWS_REGION to one of yours (aws ec2 describe-regions)", what, region, dns.Name), err}
	}
	if s := err.Error(); strings.Contains(s, "failed to retrieve credentials") || strings.Contains(s, "failed to refresh cached credentials") {
		return &explained{fmt.Sprintf("%s: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where an IAM role provides them (%v)", what, err), err}
	}
	return &explained{fmt.Sprintf("%s: %v", what, err), err}
}

// code is the AWS error code of err, or "".
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func firstSentence(s string) string {
	if i := strings.Index(s, ". Encoded authorization failure message"); i >= 0 {
		return s[:i+1]
	}
	return s
}

// explained is an SDK error with unikfile's explanation; it unwraps to the
// SDK's error, so its AWS error code stays readable.
type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }
