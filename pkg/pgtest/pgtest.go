// Package pgtest gives tests a real PostgreSQL server: Debian's package
// (binaries in /usr/lib/postgresql/<version>/bin, installed by
// scripts/deps.sh) started in a temporary directory on a free loopback port.
//
// Tests call DSN (a fresh database per call) or Server. When
// SAMSA_TEST_POSTGRES is set to a DSN they share that server; otherwise the
// first call in a test binary starts one, which RunMain stops when the
// binary exits. A test that cannot get a server fails; it never skips.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the environment variable with the DSN of a running server
// that tests share (its user must be allowed to create databases).
const EnvDSN = "SAMSA_TEST_POSTGRES"

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// ServerDSN returns the DSN of a real PostgreSQL for t: SAMSA_TEST_POSTGRES,
// or a server started for this test binary. Tests that share it must not
// assume an empty database; DSN gives each test a database of its own.
func ServerDSN(t testing.TB) string {
	t.Helper()
	if env := os.Getenv(EnvDSN); env != "" {
		return env
	}
	sharedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared, sharedErr = Start(ctx)
	})
	if sharedErr != nil {
		t.Fatalf("pgtest: no PostgreSQL for this test (set %s, or install PostgreSQL: scripts/deps.sh): %v", EnvDSN, sharedErr)
	}
	return shared.DSN()
}

var dbSeq atomic.Int64

// DSN creates a new, empty database on the shared server and returns its
// DSN. The database is dropped when t ends.
func DSN(t testing.TB) string {
	t.Helper()
	base := ServerDSN(t)
	name := fmt.Sprintf("t_%d_%d", time.Now().UnixNano()%1e9, dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	dsn, err := withDatabase(base, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}

// withDatabase returns dsn (a URL or a key=value string) pointing at db.
func withDatabase(dsn, db string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse %s: %w", EnvDSN, err)
		}
		u.Path = "/" + db
		return u.String(), nil
	}
	return dsn + " dbname=" + db, nil
}

// RunMain runs the tests of a package and then stops the server ServerDSN
// may have started. Call it from TestMain: os.Exit(pgtest.RunMain(m)).
// Packages that also need Kafka chain both: see kafkatest.RunMain.
func RunMain(m *testing.M) int {
	code := m.Run()
	Shutdown()
	return code
}

// Shutdown stops the server ServerDSN started, if any. RunMain calls it.
func Shutdown() {
	if shared != nil {
		shared.Stop()
	}
}

// Server is a PostgreSQL server process on 127.0.0.1 with its data in a
// temporary directory.
type Server struct {
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once
}

// DSN connects as the superuser "postgres" (trust authentication) to the
// database "postgres".
func (s *Server) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
}

// Start initialises a cluster in a new temporary directory and starts a
// server on a free loopback port, with durability switched off for speed.
// It returns once the server accepts connections. Running as root, the
// server runs as the "postgres" user, as PostgreSQL refuses to run as root.
func Start(ctx context.Context) (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "samsa-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: temp dir: %w", err)
	}
	s := &Server{dir: dir, done: make(chan struct{})}
	cred, err := credential(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Env = env(dir)
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	if s.port, err = freePort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: log file: %w", err)
	}
	s.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+dir,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=200",
		"-c", "shared_buffers=64MB",
	)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.Env = env(dir)
	// Its own process group, so that the server and its children never get
	// the terminal's signals; run as the postgres user when we are root;
	// killed if the test binary dies without stopping it (a test timeout
	// panics past RunMain).
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pgtest: start postgres: %w", err)
	}
	go func() {
		_ = s.cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	if err := s.waitReady(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, s.DSN())
		if err == nil {
			err = conn.Ping(cctx)
			conn.Close(context.Background())
		}
		ccancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
			return fmt.Errorf("pgtest: postgres exited before accepting connections: %w\n%s", last, log)
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres not ready: %w", errors.Join(ctx.Err(), last))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop shuts the server down (fast shutdown, then SIGKILL after 15 s) and
// removes its directory.
func (s *Server) Stop() {
	s.once.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			_ = s.cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-s.done:
			case <-time.After(15 * time.Second):
				_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
				<-s.done
			}
		}
		os.RemoveAll(s.dir)
	})
}

// binDir finds the newest installed server: Debian's
// /usr/lib/postgresql/<version>/bin, or pg_config --bindir.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var found []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			found = append(found, d)
		}
	}
	if len(found) > 0 {
		sort.Slice(found, func(i, j int) bool { return version(found[i]) > version(found[j]) })
		return found[0], nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("pgtest: PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb); install them with scripts/deps.sh (Debian package postgresql)")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// credential returns the identity to run the server as: nil (ourselves)
// unless we are root, then the postgres user, who is given dir.
func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root needs a postgres user to run the server as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, fmt.Errorf("pgtest: chown %s: %w", dir, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

func env(dir string) []string {
	return []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "LC_ALL=C", "TZ=UTC"}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
