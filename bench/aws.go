package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"
	"golang.org/x/sync/errgroup"

	"github.com/unikfile/unikfile/stages/deploy/aws"
	"github.com/unikfile/unikfile/stages/deploy/aws/awstest"
)

// benchAWS uploads a 1 GiB raw disk holding a few MiB of data to the
// project's AWS endpoint (the EBS direct API on 127.0.0.1, checking every
// block's SHA-256) twice: as the aws provider does, skipping blocks of
// zeros, and, as the baseline, putting every block, with the same SDK
// client and the same number of calls in flight.
func benchAWS() error {
	tmp, err := os.MkdirTemp("", "unikfile-bench-aws-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, "disk.raw")
	dataBlocks, err := writeSparseDisk(path)
	if err != nil {
		return err
	}
	srv := awstest.New(awstest.Options{})
	defer srv.Close()
	creds := credentials.NewStaticCredentialsProvider(awstest.AccessKey, awstest.SecretKey, "")
	p := &aws.Provider{Endpoint: srv.URL, Credentials: creds, Poll: 10 * time.Millisecond}
	ctx := context.Background()

	fmt.Printf("aws upload: a 1 GiB raw disk with %d MiB of data in %d blocks, to the EBS direct API of the project's endpoint on 127.0.0.1, %d calls in flight\n",
		dataBlocks/2, dataBlocks, aws.DefaultConcurrency)
	var res aws.Uploaded
	skip, err := timeIt(func() error {
		var err error
		res, err = p.Upload(ctx, awstest.Region, aws.Upload{Path: path, Token: "bench-skip"})
		return err
	})
	if err != nil {
		return err
	}
	calls := srv.Count("PutSnapshotBlock")
	cfg := awssdk.Config{Region: awstest.Region, Credentials: creds, BaseEndpoint: awssdk.String(srv.URL)}
	all, err := timeIt(func() error { return uploadEveryBlock(ctx, ebs.NewFromConfig(cfg), path) })
	if err != nil {
		return err
	}
	fmt.Printf("%-40s %10s   %d PutSnapshotBlock calls (%d blocks hold data)\n", "skipping zero blocks (unikfile)", round(skip), calls, res.Written)
	fmt.Printf("%-40s %10s   %d PutSnapshotBlock calls   %.1fx unikfile\n\n", "every block (baseline)", round(all), srv.Count("PutSnapshotBlock")-calls, float64(all)/float64(skip))
	return nil
}

// writeSparseDisk writes a sparse 1 GiB file with data where a boot disk
// has it (its first MiB, a few scattered MiB), and returns how many 512 KiB
// blocks hold data.
func writeSparseDisk(path string) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := f.Truncate(1 << 30); err != nil {
		return 0, err
	}
	blocks := 0
	for i, off := range []int64{0, 1 << 20, 3 << 20, 64 << 20, 300 << 20, 700 << 20, 1023 << 20} {
		chunk := bytes.Repeat([]byte{byte(i + 1), 0x5a}, 512<<10) // 1 MiB
		if _, err := f.WriteAt(chunk, off); err != nil {
			return 0, err
		}
		blocks += 2
	}
	return blocks, f.Close()
}

// uploadEveryBlock is the baseline: every block of the file put, zeros or
// not, then the snapshot completed.
func uploadEveryBlock(ctx context.Context, c *ebs.Client, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, _ := f.Stat()
	n := int32(fi.Size() / aws.BlockSize)
	st, err := c.StartSnapshot(ctx, &ebs.StartSnapshotInput{VolumeSize: awssdk.Int64(fi.Size() >> 30)})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	sums := make([][]byte, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(aws.DefaultConcurrency)
	for i := int32(0); i < n; i++ {
		g.Go(func() error {
			buf := make([]byte, aws.BlockSize)
			if _, err := f.ReadAt(buf, int64(i)*aws.BlockSize); err != nil {
				return err
			}
			sum := sha256.Sum256(buf)
			_, err := c.PutSnapshotBlock(gctx, &ebs.PutSnapshotBlockInput{SnapshotId: st.SnapshotId, BlockIndex: awssdk.Int32(i),
				BlockData: bytes.NewReader(buf), DataLength: awssdk.Int32(aws.BlockSize),
				Checksum: awssdk.String(base64.StdEncoding.EncodeToString(sum[:])), ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256})
			mu.Lock()
			sums[i] = sum[:]
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	h := sha256.New()
	for _, s := range sums {
		h.Write(s)
	}
	_, err = c.CompleteSnapshot(ctx, &ebs.CompleteSnapshotInput{SnapshotId: st.SnapshotId, ChangedBlocksCount: awssdk.Int32(n),
		Checksum: awssdk.String(base64.StdEncoding.EncodeToString(h.Sum(nil))), ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256,
		ChecksumAggregationMethod: ebstypes.ChecksumAggregationMethodChecksumAggregationLinear})
	return err
}
