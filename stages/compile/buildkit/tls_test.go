package buildkit

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/unikfile/unikfile/internal/testenv"
	"github.com/unikfile/unikfile/lang"
)

// writeCert writes a certificate signed by parent (self-signed when nil)
// and its key as PEM files dir/name.pem and dir/name-key.pem.
func writeCert(t *testing.T, dir, name string, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, name+"-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

// A tcp:// buildkitd that requires TLS with client certificates answers
// with the TLS settings and refuses without them.
func TestTLSBuildKit(t *testing.T) {
	if missing != "" {
		t.Skip(missing)
	}
	dir := t.TempDir()
	now := time.Now()
	ca, caKey := writeCert(t, dir, "ca", &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "unikfile test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil, nil)
	writeCert(t, dir, "server", &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "buildkitd"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"buildkitd.test"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}, ca, caKey)
	writeCert(t, dir, "client", &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "unikfile"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}, ca, caKey)
	f := func(name string) string { return filepath.Join(dir, name) }

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "tcp://127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	withTLS := Settings{Executor: "buildkit", Host: addr, TLSCACert: f("ca.pem"), TLSCert: f("client.pem"), TLSKey: f("client-key.pem"), TLSServerName: "buildkitd.test"}
	ping := func(string) error {
		ex, _, err := Select(context.Background(), withTLS)
		if ex != nil {
			ex.Close()
		}
		return err
	}
	bk, err := testenv.StartBuildKitAt(dir, addr, []string{"--tlscacert", f("ca.pem"), "--tlscert", f("server.pem"), "--tlskey", f("server-key.pem")}, ping)
	if err != nil {
		t.Fatal(err)
	}
	defer bk.Stop()

	// The TLS settings from the environment, as a user gives them.
	s := SettingsFor(&lang.Project{Build: lang.Build{Executor: "local"}}, "", []string{
		HostEnv + "=" + addr, TLSCACertEnv + "=" + f("ca.pem"), TLSCertEnv + "=" + f("client.pem"),
		TLSKeyEnv + "=" + f("client-key.pem"), TLSServerNameEnv + "=buildkitd.test",
	})
	ex, _, err := Select(context.Background(), s)
	if err != nil {
		t.Fatalf("with TLS from the environment: %v", err)
	}
	ex.Close()

	for name, s := range map[string]Settings{
		"no TLS":                {Executor: "buildkit", Host: addr},
		"no client certificate": {Executor: "buildkit", Host: addr, TLSCACert: f("ca.pem"), TLSServerName: "buildkitd.test"},
	} {
		_, _, err := Select(context.Background(), s)
		var ue *UnreachableError
		if !errors.As(err, &ue) {
			t.Errorf("%s: err = %v; want an UnreachableError", name, err)
		}
	}
	half := withTLS
	half.TLSKey = ""
	if _, _, err := Select(context.Background(), half); err == nil || !strings.Contains(err.Error(), "set both "+TLSCertEnv+" and "+TLSKeyEnv) {
		t.Errorf("certificate without key: %v", err)
	}
}
