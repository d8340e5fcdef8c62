package awstest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// The endpoint is checked through the real SDK clients, as the provider
// uses it: these tests are about the endpoint being as strict as AWS.

func clients(t *testing.T, s *Server, region, secret string) (*ec2.Client, *ebs.Client) {
	t.Helper()
	cfg := aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, secret, ""),
		BaseEndpoint: aws.String(s.URL),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
	}
	return ec2.NewFromConfig(cfg), ebs.NewFromConfig(cfg)
}

func codeOf(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := codeOf(err); got != code {
		t.Errorf("error code %q (%v), want %q", got, err, code)
	}
}

var ctx = context.Background()

func block(b byte) ([]byte, string, []byte) {
	data := bytes.Repeat([]byte{b}, BlockSize)
	sum := sha256.Sum256(data)
	return data, base64.StdEncoding.EncodeToString(sum[:]), sum[:]
}

func put(c *ebs.Client, snap string, idx int32, data []byte, sum string) error {
	_, err := c.PutSnapshotBlock(ctx, &ebs.PutSnapshotBlockInput{
		SnapshotId: aws.String(snap), BlockIndex: aws.Int32(idx), BlockData: bytes.NewReader(data),
		DataLength: aws.Int32(int32(len(data))), Checksum: aws.String(sum), ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256,
	})
	return err
}

func TestSignaturesAreChecked(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	e2, eb := clients(t, s, Region, "wrong secret")
	_, err := e2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	wantCode(t, err, "AuthFailure")
	_, err = eb.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1)})
	wantCode(t, err, "InvalidSignatureException")

	e2, eb = clients(t, s, "eu-west-9", SecretKey)
	_, err = e2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	wantCode(t, err, "AuthFailure")
	if err == nil || !strings.Contains(err.Error(), "scoped to a valid region") {
		t.Errorf("a request signed for another region: %v", err)
	}
	_, err = eb.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1)})
	wantCode(t, err, "InvalidSignatureException")

	// Unsigned, and signed but altered on the way.
	resp, err := http.Post(s.URL+"/", "application/x-www-form-urlencoded", strings.NewReader("Action=DescribeSubnets&Version=2016-11-15"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("an unsigned request: status %d", resp.StatusCode)
	}
	req := signed(t, s, "ec2", "Action=DescribeSubnets&Version=2016-11-15")
	req.Body = io.NopCloser(strings.NewReader("Action=DescribeSubnets&Version=2016-11-14"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("a request whose body changed after signing: status %d", resp.StatusCode)
	}

	e2, _ = clients(t, s, Region, SecretKey)
	if _, err := e2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}); err != nil {
		t.Errorf("a well-signed request: %v", err)
	}
}

// signed is a raw EC2 Query request signed with the fixed credentials.
func signed(t *testing.T, s *Server, service, body string) *http.Request {
	t.Helper()
	req, _ := http.NewRequest("POST", s.URL+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: AccessKey, SecretAccessKey: SecretKey}, req,
		hexs(sum[:]), service, Region, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func hexs(b []byte) string {
	const d = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, x := range b {
		out[2*i], out[2*i+1] = d[x>>4], d[x&15]
	}
	return string(out)
}

func TestRequiredParameters(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	for body, code := range map[string]string{
		"Action=RunInstances&Version=2016-11-15&ImageId=ami-1&MaxCount=1":          "MissingParameter",
		"Action=CreateSecurityGroup&Version=2016-11-15&GroupName=x":                "MissingParameter",
		"Action=DescribeImages&Version=2016-11-15&Filter.1.Name=color":             "InvalidParameterValue",
		"Action=DeleteSnapshot&Version=2016-11-15":                                 "MissingParameter",
		"Action=RegisterImage&Version=2016-11-15&Name=x1y&RootDeviceName=/dev/sda": "InvalidBlockDeviceMapping",
		"Action=Frobnicate&Version=2016-11-15":                                     "InvalidAction",
	} {
		resp, err := http.DefaultClient.Do(signed(t, s, "ec2", body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), "<Code>"+code+"</Code>") {
			t.Errorf("%s: status %d, %s; want %s", body, resp.StatusCode, b, code)
		}
	}
}

func TestSnapshotBlocksAndCompletion(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	e2, eb := clients(t, s, Region, SecretKey)
	_, err := eb.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(0)})
	wantCode(t, err, "ValidationException")
	st, err := eb.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), ClientToken: aws.String("tok")})
	if err != nil {
		t.Fatal(err)
	}
	snap := aws.ToString(st.SnapshotId)
	if aws.ToInt32(st.BlockSize) != BlockSize || st.Status != ebstypes.StatusPending {
		t.Errorf("StartSnapshot: block size %d, status %s", aws.ToInt32(st.BlockSize), st.Status)
	}
	again, err := eb.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), ClientToken: aws.String("tok")})
	if err != nil || aws.ToString(again.SnapshotId) != snap {
		t.Errorf("StartSnapshot with the same client token: %v, %v", again, err)
	}
	_, err = eb.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(2), ClientToken: aws.String("tok")})
	wantCode(t, err, "ConflictException")

	a, sumA, rawA := block(1)
	b, sumB, rawB := block(2)
	wantCode(t, put(eb, snap, 0, a, sumB), "ValidationException")        // wrong checksum
	wantCode(t, put(eb, snap, 2048, a, sumA), "ValidationException")     // past a 1 GiB volume
	wantCode(t, put(eb, snap, 0, a[:4096], sumA), "ValidationException") // not a whole block
	wantCode(t, put(eb, "snap-0123456789abcdef0", 0, a, sumA), "ResourceNotFoundException")
	if err := put(eb, snap, 7, b, sumB); err != nil {
		t.Fatal(err)
	}
	if err := put(eb, snap, 3, a, sumA); err != nil {
		t.Fatal(err)
	}
	// RegisterImage needs a completed snapshot.
	_, err = e2.RegisterImage(ctx, registerInput(snap))
	wantCode(t, err, "IncorrectState")

	complete := func(n int32, sum string) error {
		_, err := eb.CompleteSnapshot(ctx, &ebs.CompleteSnapshotInput{SnapshotId: aws.String(snap), ChangedBlocksCount: aws.Int32(n),
			Checksum: aws.String(sum), ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256,
			ChecksumAggregationMethod: ebstypes.ChecksumAggregationMethodChecksumAggregationLinear})
		return err
	}
	h := sha256.New()
	h.Write(rawA) // block 3 before block 7
	h.Write(rawB)
	linear := base64.StdEncoding.EncodeToString(h.Sum(nil))
	h = sha256.New()
	h.Write(rawB)
	h.Write(rawA)
	wrongOrder := base64.StdEncoding.EncodeToString(h.Sum(nil))
	wantCode(t, complete(3, linear), "ValidationException")
	wantCode(t, complete(2, wrongOrder), "ValidationException")
	if err := complete(2, linear); err != nil {
		t.Fatalf("CompleteSnapshot with the linear checksum: %v", err)
	}
	wantCode(t, put(eb, snap, 9, a, sumA), "ValidationException") // no writes after completion
	time.Sleep(100 * time.Millisecond)
	out, err := e2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{snap}})
	if err != nil || out.Snapshots[0].State != ec2types.SnapshotStateCompleted {
		t.Fatalf("after completion: %v, %v", out, err)
	}
	im, err := e2.RegisterImage(ctx, registerInput(snap))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e2.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(snap)})
	wantCode(t, err, "InvalidSnapshot.InUse")
	_, err = e2.RegisterImage(ctx, registerInput(snap))
	wantCode(t, err, "InvalidAMIName.Duplicate")
	if _, err := e2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: im.ImageId}); err != nil {
		t.Fatal(err)
	}
	if _, err := e2.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(snap)}); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotTimesOutIntoError(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	e2, eb := clients(t, s, Region, SecretKey)
	st, err := eb.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), Timeout: aws.Int32(10)})
	if err != nil {
		t.Fatal(err)
	}
	s.Shift(11 * time.Minute)
	out, err := e2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{aws.ToString(st.SnapshotId)}})
	if err != nil || out.Snapshots[0].State != ec2types.SnapshotStateError {
		t.Errorf("a snapshot past its timeout: %+v, %v", out.Snapshots, err)
	}
}

func registerInput(snap string) *ec2.RegisterImageInput {
	return &ec2.RegisterImageInput{
		Name: aws.String("unikfile-test"), RootDeviceName: aws.String("/dev/xvda"), VirtualizationType: aws.String("hvm"),
		Architecture: ec2types.ArchitectureValuesX8664, BootMode: ec2types.BootModeValuesLegacyBios,
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{DeviceName: aws.String("/dev/xvda"), Ebs: &ec2types.EbsBlockDevice{SnapshotId: aws.String(snap)}}},
	}
}

func TestInstancesAndSecurityGroups(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	e2, eb := clients(t, s, Region, SecretKey)
	st, _ := eb.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1)})
	a, sumA, _ := block(1)
	if err := put(eb, aws.ToString(st.SnapshotId), 0, a, sumA); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.CompleteSnapshot(ctx, &ebs.CompleteSnapshotInput{SnapshotId: st.SnapshotId, ChangedBlocksCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	im, err := e2.RegisterImage(ctx, registerInput(aws.ToString(st.SnapshotId))) // no ENA
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	sg, err := e2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("g"), Description: aws.String("d"), VpcId: aws.String(DefaultVPC)})
	if err != nil {
		t.Fatal(err)
	}
	run := func(itype string, subnet string) (*ec2.RunInstancesOutput, error) {
		return e2.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: im.ImageId, InstanceType: ec2types.InstanceType(itype), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			NetworkInterfaces: []ec2types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: aws.String(subnet), Groups: []string{aws.ToString(sg.GroupId)}}}})
	}
	_, err = run("t3.micro", DefaultSubnet)
	wantCode(t, err, "InvalidParameterCombination") // t3 needs ENA
	_, err = run("t2.micro", OtherSubnet)
	wantCode(t, err, "InvalidParameter") // the group is in another VPC
	_, err = run("t9.huge", DefaultSubnet)
	wantCode(t, err, "InvalidParameterValue")
	out, err := run("t2.micro", DefaultSubnet)
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	if out.Instances[0].State.Name != ec2types.InstanceStateNamePending {
		t.Errorf("a new instance is %s", out.Instances[0].State.Name)
	}
	_, err = e2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: sg.GroupId})
	wantCode(t, err, "DependencyViolation")
	_, err = e2.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: im.ImageId})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	c, err := e2.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	text, _ := base64.StdEncoding.DecodeString(aws.ToString(c.Output))
	if !strings.Contains(string(text), "unikfile-init: ready") || !strings.Contains(string(text), "stand-in") {
		t.Errorf("console of a running instance: %q", text)
	}
	if _, err := e2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	_, err = e2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: sg.GroupId})
	wantCode(t, err, "DependencyViolation") // still shutting down
	time.Sleep(150 * time.Millisecond)
	if _, err := e2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: sg.GroupId}); err != nil {
		t.Errorf("deleting the group once its instance is terminated: %v", err)
	}
	d, err := e2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil || d.Reservations[0].Instances[0].State.Name != ec2types.InstanceStateNameTerminated {
		t.Errorf("a terminated instance is still described as terminated: %v", err)
	}
}

func TestPermissionsAndFaults(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	e2, eb := clients(t, s, Region, SecretKey)
	s.Allow([]string{"ec2:DescribeSubnets", "ebs:StartSnapshot"})
	if _, err := e2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{}); err != nil {
		t.Error(err)
	}
	_, err := e2.DescribeImages(ctx, &ec2.DescribeImagesInput{})
	wantCode(t, err, "UnauthorizedOperation")
	_, err = eb.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), Tags: []ebstypes.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
	wantCode(t, err, "AccessDeniedException") // tagging needs ec2:CreateTags
	s.Allow(nil)
	s.Inject(&Fault{Action: "DescribeImages", After: 1, Times: 1, Code: "RequestLimitExceeded"})
	for i, want := range []string{"", "RequestLimitExceeded", ""} {
		_, err := e2.DescribeImages(ctx, &ec2.DescribeImagesInput{})
		if codeOf(err) != want {
			t.Errorf("call %d: %v, want %q", i, err, want)
		}
	}
}
