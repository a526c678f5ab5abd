// Package ldapserver runs a real OpenLDAP slapd for tests: in the
// foreground, on two free ports of 127.0.0.1 (ldap:// with StartTLS, and
// ldaps://), with a throw-away slapd.conf and an MDB database in a temporary
// directory, and a certificate from a CA of its own. It is stopped when the
// test ends, or by Close.
//
// The directory is shaped like a company's: access control lets only bound
// users read (so the broker must bind its service account), and only the
// service account read the groups (so a connection a user's bind took over
// must be bound as the service account again before a group search), the memberof
// overlay maintains memberOf for groupOfNames, a small schema adds Active
// Directory's objectGUID, sAMAccountName and userPrincipalName (with AD's
// OIDs) so that the Active Directory preset can be exercised, and
// unauthenticated binds (a DN with an empty password) succeed, as they do on
// many servers: a client that sends one is signed in as nobody, and a broker
// that took that for a valid password would let anyone in.
//
// TEST-ONLY. It needs slapd (Debian's slapd package; ./scripts/test
// installs it) and fails without it.
package ldapserver

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/oidc-broker/oidc-broker/internal/testsupport/procstop"
)

// Time limits.
const (
	startTimeout = 15 * time.Second
	stopTimeout  = 10 * time.Second
)

// The directory's fixed names.
const (
	Suffix    = "dc=example,dc=org"
	People    = "ou=people," + Suffix
	Groups    = "ou=groups," + Suffix
	ServiceDN = "cn=broker,ou=services," + Suffix
	rootDN    = "cn=admin," + Suffix
)

// Server is a slapd process under a test's control.
type Server struct {
	// URL is ldap://127.0.0.1:port: plain LDAP, with StartTLS offered.
	URL string
	// LDAPSURL is ldaps://127.0.0.1:port: TLS from the first byte.
	LDAPSURL string
	// CAFile is the PEM certificate of the CA that signed the server's
	// certificate (for 127.0.0.1 and localhost).
	CAFile string
	// ServicePassword is the password of ServiceDN, the account the
	// broker binds as to search.
	ServicePassword string

	dir          string
	rootPassword string
	mu           sync.Mutex
	cmd          *exec.Cmd
	exited       chan struct{}
	output       *bytes.Buffer
}

// Start runs a slapd for tb with the base entries (the suffix, ou=people,
// ou=groups, ou=services and the service account) and waits until it
// answers. It is stopped when tb ends, and its output logged if tb failed.
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := Launch(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("slapd %s output:\n%s", s.URL, s.Output())
		}
		s.Close()
	})
	return s
}

// Launch is Start for a TestMain: the server lives in dir until Close.
func Launch(dir string) (*Server, error) {
	if _, err := exec.LookPath(slapdPath()); err != nil {
		return nil, errors.New("ldapserver: slapd is not installed (Debian package slapd): run ./scripts/test, which installs it")
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	s := &Server{
		URL:             fmt.Sprintf("ldap://127.0.0.1:%d", ports[0]),
		LDAPSURL:        fmt.Sprintf("ldaps://127.0.0.1:%d", ports[1]),
		ServicePassword: rand.Text(),
		dir:             dir,
		rootPassword:    rand.Text(),
		output:          &bytes.Buffer{},
	}
	if s.CAFile, err = writeCertificates(dir); err != nil {
		return nil, err
	}
	if err := s.writeConfig(); err != nil {
		return nil, err
	}
	if err := s.Restart(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.Add(s.baseEntries()); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// slapdPath is Debian's slapd, which is not on a normal user's PATH.
func slapdPath() string {
	if p, err := exec.LookPath("slapd"); err == nil {
		return p
	}
	return "/usr/sbin/slapd"
}

func (s *Server) writeConfig() error {
	db := filepath.Join(s.dir, "db")
	if err := os.MkdirAll(db, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.dir, "ad.schema"), []byte(adSchema), 0o600); err != nil {
		return err
	}
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
include %[1]s/ad.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
TLSCACertificateFile %[1]s/ca.pem
TLSCertificateFile %[1]s/server.pem
TLSCertificateKeyFile %[1]s/server-key.pem
allow bind_anon_dn
database mdb
maxsize 67108864
suffix %[2]q
rootdn %[3]q
rootpw %[4]s
directory %[5]s
overlay memberof
access to attrs=userPassword by self write by anonymous auth by * none
access to dn.subtree=%[6]q by dn.exact=%[7]q read by * none
access to * by users read by * none
`, s.dir, Suffix, rootDN, s.rootPassword, db, Groups, ServiceDN)
	return os.WriteFile(filepath.Join(s.dir, "slapd.conf"), []byte(conf), 0o600)
}

// adSchema gives slapd three of Active Directory's attributes, with AD's
// OIDs and syntaxes (objectGUID is 16 bytes of binary), on an auxiliary
// class of this test's own.
const adSchema = `attributetype ( 1.2.840.113556.1.4.2 NAME 'objectGUID'
	EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
	EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName'
	EQUALITY caseIgnoreMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.4203.666.11.77.1 NAME 'testADUser' AUXILIARY
	MAY ( objectGUID $ sAMAccountName $ userPrincipalName ) )
`

func (s *Server) baseEntries() string {
	return fmt.Sprintf(`dn: %s
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: %s
objectClass: organizationalUnit
ou: people

dn: %s
objectClass: organizationalUnit
ou: groups

dn: ou=services,%s
objectClass: organizationalUnit
ou: services

dn: %s
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: broker
userPassword: %s
`, Suffix, People, Groups, Suffix, ServiceDN, s.ServicePassword)
}

// Restart starts slapd (again) on the same ports with the same database.
func (s *Server) Restart() error {
	_, plain, _ := net.SplitHostPort(s.URL[len("ldap://"):])
	_, tls, _ := net.SplitHostPort(s.LDAPSURL[len("ldaps://"):])
	// -d 256 keeps slapd in the foreground and logs each operation (stats),
	// which the test shows when it fails.
	cmd := exec.Command(slapdPath(), "-f", filepath.Join(s.dir, "slapd.conf"), "-d", "256",
		"-h", fmt.Sprintf("ldap://127.0.0.1:%s/ ldaps://127.0.0.1:%s/", plain, tls))
	cmd.Stdout, cmd.Stderr = syncWriter{s}, syncWriter{s}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("ldapserver: start slapd: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	deadline := time.Now().Add(startTimeout)
	for {
		err := s.ping()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("ldapserver: slapd exited at start: %s", s.Output())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ldapserver: slapd did not answer within %v: %w", startTimeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop shuts slapd down (SIGTERM) and waits until it has exited: clients
// get connection refused until Restart. The database stays.
func (s *Server) Stop() error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return errors.New("ldapserver: slapd had exited already")
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("ldapserver: slapd did not stop within %v; killed it", stopTimeout)
	}
}

// Pause stops the process (SIGSTOP): connections are accepted by the
// kernel but nothing answers, as with a directory that hangs. Resume
// continues it. Pause returns once every thread of slapd is stopped
// (procstop.Wait).
func (s *Server) Pause() error {
	if err := s.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	s.mu.Lock()
	pid := s.cmd.Process.Pid
	s.mu.Unlock()
	return procstop.Wait(pid, 5*time.Second)
}

// Resume continues a paused server.
func (s *Server) Resume() error { return s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.Process.Signal(sig)
}

// Close ends the process (a paused one too).
func (s *Server) Close() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
	default:
		_ = cmd.Process.Kill()
		<-exited
	}
}

// Output is what slapd printed so far.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.output.String()
}

// Root connects and binds as the directory's root DN, which may do
// anything. The caller closes the connection.
func (s *Server) Root() (*ldap.Conn, error) {
	c, err := ldap.DialURL(s.URL, ldap.DialWithDialer(&net.Dialer{Timeout: time.Second}))
	if err != nil {
		return nil, err
	}
	c.SetTimeout(5 * time.Second)
	if err := c.Bind(rootDN, s.rootPassword); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (s *Server) ping() error {
	c, err := s.Root()
	if err != nil {
		return err
	}
	return c.Close()
}

// freePorts returns n distinct free ports of 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close() // held until all are picked, so they differ
		_, p, _ := net.SplitHostPort(ln.Addr().String())
		n, _ := strconv.Atoi(p)
		ports = append(ports, n)
	}
	return ports, nil
}

// syncWriter appends the process's output under the server's lock.
type syncWriter struct{ s *Server }

func (w syncWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.output.Write(p)
}
