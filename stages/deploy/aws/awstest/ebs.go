package awstest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// BlockSize is the EBS direct APIs' block size.
const BlockSize = 512 << 10

// blocksPerGiB is how many blocks one GiB of volume holds.
const blocksPerGiB = (1 << 30) / BlockSize

func writeEBS(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

func writeEBSError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("X-Amzn-ErrorType", e.Code)
	body := map[string]string{"message": e.Message}
	if e.Reason != "" {
		body["Reason"] = e.Reason
	}
	writeEBS(w, e.Status, body)
}

func validation(reason, format string, args ...any) *apiError {
	return &apiError{Status: 400, Code: "ValidationException", Message: fmt.Sprintf(format, args...), Reason: reason}
}

func notFound(id string) *apiError {
	return &apiError{Status: 404, Code: "ResourceNotFoundException", Message: fmt.Sprintf("The snapshot %s does not exist", id), Reason: "SNAPSHOT_NOT_FOUND"}
}

// ebsRoute names the operation of an EBS direct API request and its path
// parameters.
func ebsRoute(r *http.Request) (op string, snap string, block string) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodPost && len(parts) == 1:
		return "StartSnapshot", "", ""
	case r.Method == http.MethodPut && len(parts) == 4 && parts[2] == "blocks":
		return "PutSnapshotBlock", parts[1], parts[3]
	case r.Method == http.MethodPost && len(parts) == 3 && parts[1] == "completion":
		return "CompleteSnapshot", parts[2], ""
	}
	return "", "", ""
}

func (s *Server) serveEBS(w http.ResponseWriter, r *http.Request, body []byte) {
	op, snapID, block := ebsRoute(r)
	if op == "" {
		writeEBSError(w, &apiError{Status: 404, Code: "UnknownOperationException", Message: fmt.Sprintf("%s %s is not an EBS direct API operation", r.Method, r.URL.Path)})
		return
	}
	if ae := verifySigV4(r, body, AccessKey, SecretKey, s.opts.Region, "ebs", op == "PutSnapshotBlock", time.Now()); ae != nil {
		s.mu.Lock()
		s.record("ebs", op, &apiError{Code: "InvalidSignatureException"})
		s.mu.Unlock()
		code := "InvalidSignatureException"
		if ae.kind == "credentials" {
			code = "UnrecognizedClientException"
		}
		writeEBSError(w, &apiError{Status: 403, Code: code, Message: ae.msg})
		return
	}
	s.mu.Lock()
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		hook(op)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	var e *apiError
	switch op {
	case "StartSnapshot":
		e = s.startSnapshot(w, body)
	case "PutSnapshotBlock":
		e = s.putSnapshotBlock(w, r, snapID, block, body)
	case "CompleteSnapshot":
		e = s.completeSnapshot(w, r, snapID)
	}
	s.record("ebs", op, e)
	if e != nil {
		writeEBSError(w, e)
	}
}

type startRequest struct {
	VolumeSize       *int64
	ParentSnapshotId string
	Tags             []struct{ Key, Value string }
	Description      string
	ClientToken      string
	Encrypted        bool
	KmsKeyArn        string
	Timeout          *int
}

// check runs the permission check and the injected faults. Called with
// s.mu held.
func (s *Server) ebsCheck(op string, extra ...string) *apiError {
	if e := s.permitted("ebs", append([]string{"ebs:" + op}, extra...)...); e != nil {
		return e
	}
	return s.fault(op)
}

func (s *Server) startSnapshot(w http.ResponseWriter, body []byte) *apiError {
	var req startRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return validation("INVALID_PARAMETER_VALUE", "The request body is not a StartSnapshot request: %v", err)
	}
	var extra []string
	if len(req.Tags) > 0 {
		extra = append(extra, "ec2:CreateTags")
	}
	if e := s.ebsCheck("StartSnapshot", extra...); e != nil {
		return e
	}
	switch {
	case req.VolumeSize == nil:
		return validation("INVALID_VOLUME_SIZE", "VolumeSize is required")
	case *req.VolumeSize < 1 || *req.VolumeSize > 65536:
		return validation("INVALID_VOLUME_SIZE", "VolumeSize %d GiB is out of range [1, 65536]", *req.VolumeSize)
	case req.ParentSnapshotId != "":
		return validation("INVALID_SNAPSHOT_ID", "This endpoint starts full snapshots only (no ParentSnapshotId)")
	case req.Encrypted || req.KmsKeyArn != "":
		return validation("INVALID_PARAMETER_VALUE", "This endpoint makes unencrypted snapshots only")
	}
	timeout := 60
	if req.Timeout != nil {
		timeout = *req.Timeout
		if timeout < 10 || timeout > 4320 {
			return validation("INVALID_PARAMETER_VALUE", "Timeout %d minutes is out of range [10, 4320]", timeout)
		}
	}
	var t tags
	for _, x := range req.Tags {
		if x.Key == "" || strings.HasPrefix(x.Key, "aws:") {
			return validation("INVALID_TAG", "Tag key %q is not allowed", x.Key)
		}
		t = append(t, tag{x.Key, x.Value})
	}
	sig := fmt.Sprintf("%d|%s|%v", *req.VolumeSize, req.Description, t)
	if req.ClientToken != "" {
		if id, ok := s.tokens["snap:"+req.ClientToken]; ok {
			sn := s.snapshots[id]
			if sn.params != sig {
				return &apiError{Status: 409, Code: "ConflictException", Message: "The client token was used before with other parameters"}
			}
			writeEBS(w, 201, snapshotJSON(sn))
			return nil
		}
	}
	sn := &snapshot{
		ID: s.nextID("snap"), Description: req.Description, VolumeSize: *req.VolumeSize, Status: "pending",
		Tags: t, Start: s.now(), Timeout: time.Duration(timeout) * time.Minute, blocks: map[int64][]byte{},
		token: req.ClientToken, params: sig,
	}
	s.snapshots[sn.ID] = sn
	if req.ClientToken != "" {
		s.tokens["snap:"+req.ClientToken] = sn.ID
	}
	writeEBS(w, 201, snapshotJSON(sn))
	return nil
}

func snapshotJSON(sn *snapshot) map[string]any {
	ts := []map[string]string{}
	for _, t := range sn.Tags {
		ts = append(ts, map[string]string{"Key": t.Key, "Value": t.Value})
	}
	return map[string]any{
		"SnapshotId": sn.ID, "OwnerId": Account, "Status": sn.Status, "StartTime": float64(sn.Start.UnixMilli()) / 1000,
		"VolumeSize": sn.VolumeSize, "BlockSize": BlockSize, "Tags": ts, "Description": sn.Description,
	}
}

func (s *Server) writable(id string) (*snapshot, *apiError) {
	sn := s.snapshots[id]
	if sn == nil || sn.deleted {
		return nil, notFound(id)
	}
	if sn.Status != "pending" || !sn.doneAt.IsZero() {
		return nil, validation("INVALID_SNAPSHOT_ID", "The snapshot %s is %s and no longer accepts writes", id, map[bool]string{true: "being completed", false: sn.Status}[sn.Status == "pending"])
	}
	return sn, nil
}

func (s *Server) putSnapshotBlock(w http.ResponseWriter, r *http.Request, id, block string, body []byte) *apiError {
	if e := s.ebsCheck("PutSnapshotBlock"); e != nil {
		return e
	}
	sn, e := s.writable(id)
	if e != nil {
		return e
	}
	idx, err := strconv.ParseInt(block, 10, 64)
	if err != nil || idx < 0 || idx >= sn.VolumeSize*blocksPerGiB {
		return validation("INVALID_BLOCK", "Block index %s is out of range for a %d GiB snapshot (0 to %d)", block, sn.VolumeSize, sn.VolumeSize*blocksPerGiB-1)
	}
	length := r.Header.Get("X-Amz-Data-Length")
	if length == "" {
		return validation("INVALID_PARAMETER_VALUE", "x-amz-Data-Length is required")
	}
	if n, err := strconv.Atoi(length); err != nil || n != BlockSize {
		return validation("INVALID_PARAMETER_VALUE", "x-amz-Data-Length must be %d, the block size (got %s)", BlockSize, length)
	}
	if len(body) != BlockSize {
		return validation("INVALID_PARAMETER_VALUE", "The block data is %d bytes, not %d", len(body), BlockSize)
	}
	if alg := r.Header.Get("X-Amz-Checksum-Algorithm"); alg != "SHA256" {
		return validation("INVALID_PARAMETER_VALUE", "x-amz-Checksum-Algorithm must be SHA256 (got %q)", alg)
	}
	if p := r.Header.Get("X-Amz-Progress"); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 0 || n > 100 {
			return validation("INVALID_PARAMETER_VALUE", "x-amz-Progress %q is not a percentage", p)
		}
	}
	given := r.Header.Get("X-Amz-Checksum")
	sum := sha256.Sum256(body)
	if given != base64.StdEncoding.EncodeToString(sum[:]) {
		return validation("INVALID_PARAMETER_VALUE", "The checksum %q does not match the SHA256 of the block data", given)
	}
	sn.blocks[idx] = sum[:]
	w.Header().Set("X-Amz-Checksum", given)
	w.Header().Set("X-Amz-Checksum-Algorithm", "SHA256")
	writeEBS(w, 201, map[string]any{})
	return nil
}

func (s *Server) completeSnapshot(w http.ResponseWriter, r *http.Request, id string) *apiError {
	if e := s.ebsCheck("CompleteSnapshot"); e != nil {
		return e
	}
	sn := s.snapshots[id]
	if sn == nil || sn.deleted {
		return notFound(id)
	}
	if sn.Status != "pending" {
		return validation("INVALID_SNAPSHOT_ID", "The snapshot %s is %s", id, sn.Status)
	}
	if !sn.doneAt.IsZero() {
		// Completing again is answered like the first time.
		writeEBS(w, 202, map[string]string{"Status": "pending"})
		return nil
	}
	cnt := r.Header.Get("X-Amz-ChangedBlocksCount")
	if cnt == "" {
		return validation("INVALID_PARAMETER_VALUE", "x-amz-ChangedBlocksCount is required")
	}
	n, err := strconv.Atoi(cnt)
	if err != nil || n < 0 {
		return validation("INVALID_PARAMETER_VALUE", "x-amz-ChangedBlocksCount %q is not a count", cnt)
	}
	if n != len(sn.blocks) {
		return validation("INVALID_PARAMETER_VALUE", "ChangedBlocksCount is %d, but %d blocks were written to %s", n, len(sn.blocks), id)
	}
	if sum := r.Header.Get("X-Amz-Checksum"); sum != "" {
		if alg := r.Header.Get("X-Amz-Checksum-Algorithm"); alg != "SHA256" {
			return validation("INVALID_PARAMETER_VALUE", "x-amz-Checksum-Algorithm must be SHA256 (got %q)", alg)
		}
		if m := r.Header.Get("X-Amz-Checksum-Aggregation-Method"); m != "LINEAR" {
			return validation("INVALID_PARAMETER_VALUE", "x-amz-Checksum-Aggregation-Method must be LINEAR (got %q)", m)
		}
		if want := linearChecksum(sn.blocks); sum != want {
			return validation("INVALID_PARAMETER_VALUE", "The aggregated checksum %q does not match the blocks written (%s)", sum, want)
		}
	}
	sn.doneAt = s.now().Add(s.opts.SnapshotDelay)
	sn.final, sn.finalMsg = "completed", ""
	if s.failSnaps != "" {
		sn.final, sn.finalMsg = "error", s.failSnaps
	}
	writeEBS(w, 202, map[string]string{"Status": "pending"})
	return nil
}

// linearChecksum is EBS's linear aggregation: the SHA-256 of the written
// blocks' SHA-256 digests concatenated in ascending block index order,
// base64-encoded.
func linearChecksum(blocks map[int64][]byte) string {
	idx := make([]int64, 0, len(blocks))
	for i := range blocks {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	h := sha256.New()
	for _, i := range idx {
		h.Write(blocks[i])
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}
