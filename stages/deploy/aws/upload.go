package aws

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	ebstypes "github.com/aws/aws-sdk-go-v2/service/ebs/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// BlockSize is the EBS direct APIs' block size.
const BlockSize = 512 << 10

const gib = 1 << 30

// notFoundGrace is how long EC2 may not know a resource it just created
// (its eventual consistency): NotFound is retried that long.
const notFoundGrace = 2 * time.Minute

// snapshotTimeout is how long (minutes) EBS keeps a started snapshot
// pending before it puts it in error: an upload killed half-way does not
// linger longer than that even if nobody cleans up.
const snapshotTimeout = 60

// Upload is one disk file going into a new EBS snapshot.
type Upload struct {
	Path string
	// Tags go on the snapshot; Description names it; Token makes
	// StartSnapshot idempotent (a retry gets the same snapshot).
	Tags        map[string]string
	Description string
	Token       string
	// Started, if set, is told the snapshot's ID as soon as it exists,
	// before any block is written.
	Started func(id string) error
	// Concurrency bounds the block calls in flight.
	Concurrency int
	// Poll is how often the snapshot's state is read while it completes.
	Poll time.Duration
}

// Uploaded says what an upload did.
type Uploaded struct {
	SnapshotID string
	VolumeGiB  int64
	// Blocks is the volume's block count; Written how many were put (the
	// rest are zeros, which EBS does not need).
	Blocks, Written int64
	Checksum        string
}

// upload writes u.Path into a new snapshot and waits until it is
// completed. On error the snapshot, if one was started, is left for the
// caller to delete (its ID is in the result and was given to Started).
func upload(ctx context.Context, c *clients, u Upload) (Uploaded, error) {
	var res Uploaded
	f, err := os.Open(u.Path)
	if err != nil {
		return res, fmt.Errorf("open the image: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return res, err
	}
	size := fi.Size()
	res.VolumeGiB = max(1, (size+gib-1)/gib)
	res.Blocks = res.VolumeGiB * gib / BlockSize
	candidates, err := dataBlocks(f, size)
	if err != nil {
		return res, fmt.Errorf("read the image: %w", err)
	}

	var tags []ebstypes.Tag
	for _, k := range sortedKeys(u.Tags) {
		tags = append(tags, ebstypes.Tag{Key: awssdk.String(k), Value: awssdk.String(u.Tags[k])})
	}
	start, err := c.ebs.StartSnapshot(ctx, &ebs.StartSnapshotInput{
		VolumeSize:  awssdk.Int64(res.VolumeGiB),
		Description: awssdk.String(u.Description),
		ClientToken: awssdk.String(u.Token),
		Tags:        tags,
		Timeout:     awssdk.Int32(snapshotTimeout),
	})
	if err != nil {
		return res, explain(c.region, err)
	}
	res.SnapshotID = awssdk.ToString(start.SnapshotId)
	if bs := awssdk.ToInt32(start.BlockSize); bs != BlockSize {
		return res, fmt.Errorf("aws: StartSnapshot: the snapshot's block size is %d bytes, not %d", bs, BlockSize)
	}
	if u.Started != nil {
		if err := u.Started(res.SnapshotID); err != nil {
			return res, err
		}
	}

	digests, err := putBlocks(ctx, c, f, size, res.SnapshotID, candidates, max(u.Concurrency, 1))
	if err != nil {
		return res, err
	}
	res.Written = int64(len(digests))
	res.Checksum = linearChecksum(digests)
	if _, err := c.ebs.CompleteSnapshot(ctx, &ebs.CompleteSnapshotInput{
		SnapshotId:                awssdk.String(res.SnapshotID),
		ChangedBlocksCount:        awssdk.Int32(int32(len(digests))),
		Checksum:                  awssdk.String(res.Checksum),
		ChecksumAlgorithm:         ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256,
		ChecksumAggregationMethod: ebstypes.ChecksumAggregationMethodChecksumAggregationLinear,
	}); err != nil {
		return res, explain(c.region, err)
	}
	return res, waitSnapshot(ctx, c, res.SnapshotID, u.Poll)
}

// dataBlocks lists the indexes of the blocks of f that may hold data:
// those overlapping its data regions (SEEK_DATA/SEEK_HOLE), so a sparse
// file's holes are never read. Where the file system cannot say, every
// block is a candidate.
func dataBlocks(f *os.File, size int64) ([]int64, error) {
	n := (size + BlockSize - 1) / BlockSize
	all := func() []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(i)
		}
		return out
	}
	fd := int(f.Fd())
	var out []int64
	next := int64(0) // first block not yet listed
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // no data after off
		}
		if err != nil {
			return all(), nil
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return all(), nil
		}
		for b := max(data/BlockSize, next); b*BlockSize < hole; b++ {
			out = append(out, b)
			next = b + 1
		}
		off = hole
	}
	return out, nil
}

// putBlocks writes the candidate blocks that are not all zeros, at most
// conc at once. The SDK's retryer retries each call on throttling and
// server errors with backoff; any other failure, or one that outlasts the
// retries, cancels the calls in flight and is returned. It returns the
// SHA-256 of every written block by index.
func putBlocks(ctx context.Context, c *clients, f *os.File, size int64, snap string, candidates []int64, conc int) (map[int64][]byte, error) {
	var mu sync.Mutex
	digests := map[int64][]byte{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conc)
	total := len(candidates)
	for i, idx := range candidates {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			buf := make([]byte, BlockSize)
			n, err := f.ReadAt(buf, idx*BlockSize)
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read block %d of the image: %w", idx, err)
			}
			if n == 0 || allZero(buf[:n]) {
				return nil
			}
			sum := sha256.Sum256(buf) // the tail of the last block is zero-padded
			_, err = c.ebs.PutSnapshotBlock(gctx, &ebs.PutSnapshotBlockInput{
				SnapshotId:        awssdk.String(snap),
				BlockIndex:        awssdk.Int32(int32(idx)),
				BlockData:         bytes.NewReader(buf),
				DataLength:        awssdk.Int32(BlockSize),
				Checksum:          awssdk.String(base64.StdEncoding.EncodeToString(sum[:])),
				ChecksumAlgorithm: ebstypes.ChecksumAlgorithmChecksumAlgorithmSha256,
				Progress:          awssdk.Int32(int32(100 * (i + 1) / total)),
			})
			if err != nil {
				if gctx.Err() != nil && ctx.Err() == nil {
					return nil // another block failed first; its error is the one
				}
				return fmt.Errorf("block %d: %w", idx, explain(c.region, err))
			}
			mu.Lock()
			digests[idx] = sum[:]
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("upload to snapshot %s: %w", snap, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return digests, nil
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// linearChecksum is EBS's linear aggregate checksum: the SHA-256 of the
// written blocks' SHA-256 digests (raw, 32 bytes each) concatenated in
// ascending block index order, base64-encoded.
func linearChecksum(digests map[int64][]byte) string {
	idx := make([]int64, 0, len(digests))
	for i := range digests {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(a, b int) bool { return idx[a] < idx[b] })
	h := sha256.New()
	for _, i := range idx {
		h.Write(digests[i])
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// waitSnapshot waits until the snapshot is completed; "error" fails at
// once with the state message AWS gives.
func waitSnapshot(ctx context.Context, c *clients, id string, poll time.Duration) error {
	w := waiter{max: poll}
	start := time.Now()
	for {
		out, err := c.ec2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}, OwnerIds: []string{"self"}})
		if code(err) == "InvalidSnapshot.NotFound" || err == nil && len(out.Snapshots) == 0 {
			if time.Since(start) < notFoundGrace {
				if err := w.sleep(ctx); err != nil {
					return err
				}
				continue // EC2 does not know it yet
			}
			return fmt.Errorf("aws: DescribeSnapshots: snapshot %s is gone", id)
		}
		if err != nil {
			return explain(c.region, err)
		}
		sn := out.Snapshots[0]
		switch sn.State {
		case ec2types.SnapshotStateCompleted:
			return nil
		case ec2types.SnapshotStateError:
			return fmt.Errorf("aws: snapshot %s ended in state error: %s; run up again (it starts a new snapshot)", id, awssdk.ToString(sn.StateMessage))
		}
		if err := w.sleep(ctx); err != nil {
			return err
		}
	}
}

// waiter sleeps between polls of a state that changes by itself: 100ms
// first (or max if less), doubling up to max, so that what is quick is
// seen quickly and what is slow is not asked about too often.
type waiter struct{ d, max time.Duration }

func (w *waiter) sleep(ctx context.Context) error {
	switch {
	case w.d == 0:
		w.d = min(100*time.Millisecond, w.max)
	case w.d < w.max:
		w.d = min(2*w.d, w.max)
	}
	return sleep(ctx, w.d)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Upload writes a disk file into a new snapshot in region through the
// provider's clients, as Boot does (benchmarks use it on its own).
func (p *Provider) Upload(ctx context.Context, region string, u Upload) (Uploaded, error) {
	c, err := p.clientsFor(ctx, region)
	if err != nil {
		return Uploaded{}, err
	}
	if u.Concurrency <= 0 {
		u.Concurrency = DefaultConcurrency
	}
	if u.Poll <= 0 {
		u.Poll = p.poll()
	}
	return upload(ctx, c, u)
}
