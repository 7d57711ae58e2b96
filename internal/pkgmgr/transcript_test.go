package pkgmgr

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/badinput"
	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/command"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/fetch"
	"github.com/opsboot/bootstrap/internal/golden"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/retry"
	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/secret"
)

// rule answers calls whose argv contains match; with several replies, each
// call takes the next and the last one repeats.
type rule struct {
	match   string
	replies []reply
}

type reply struct {
	exit  int
	lines []string
}

// recorder is a command.Runner that records each spec and answers from its
// rules; an unmatched call succeeds silently.
type recorder struct {
	rules []*rule
	calls []command.Spec
}

func (r *recorder) Run(_ context.Context, s command.Spec, out func(string)) (command.Result, error) {
	r.calls = append(r.calls, s)
	line := strings.Join(s.Argv, " ")
	for _, ru := range r.rules {
		if !strings.Contains(line, ru.match) {
			continue
		}
		rep := ru.replies[0]
		if len(ru.replies) > 1 {
			ru.replies = ru.replies[1:]
		}
		for _, l := range rep.lines {
			out(l)
		}
		return command.Result{ExitCode: rep.exit, Tail: rep.lines}, nil
	}
	return command.Result{}, nil
}

// transcript is every call, one a line, the root written as $ROOT. With
// collapse, a call repeated a number of times that depends on timing is
// written once, marked "(repeated)".
func (r *recorder) transcript(root string, collapse bool) string {
	var b strings.Builder
	for i, s := range r.calls {
		if collapse && i > 0 && slices.Equal(s.Argv, r.calls[i-1].Argv) {
			if i == 1 || !slices.Equal(s.Argv, r.calls[i-2].Argv) {
				b.WriteString("(repeated)\n")
			}
			continue
		}
		if s.Chroot != "" {
			fmt.Fprintf(&b, "[chroot $ROOT] ")
		}
		if len(s.Env) > 0 {
			b.WriteString(strings.Join(s.Env, " ") + " ")
		}
		b.WriteString(strings.Join(s.Argv, " ") + "\n")
	}
	if root != "/" {
		return strings.ReplaceAll(b.String(), root, "$ROOT")
	}
	return b.String()
}

func decodeConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.ParseConfig("c.yaml", []byte(yaml), map[string]string{"instance_id": "i-1"})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

var fastRetry = retry.Policy{Initial: time.Millisecond, Max: time.Millisecond, Deadline: 5 * time.Second, MaxAttempts: 3}

const lockHeld = "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 2951 (apt-get)"

const madison = "     hello |     2.10-3 | http://deb.debian.org/debian bookworm/main amd64 Packages"

// aDeb is a stand-in package file served as file:// (the recorder answers
// dpkg-deb for it).
const aDeb = "!<arch>\ndebian-binary stand-in\n"

func TestTranscripts(t *testing.T) {
	debSum := sha256.Sum256([]byte(aDeb))
	debHex := hex.EncodeToString(debSum[:])
	tests := []struct {
		name   string
		root   []string // a fake root; nil: the host's / (only for plans that install nothing or queries)
		config string
		rules  []*rule
		uid    int
		// lockWait overrides the 5m default.
		lockWait time.Duration
		collapse bool // see transcript
		badInput bool // the plan error is the operator's to fix: exit 2
		// planErr and applyErr are expected error fragments.
		planErr, applyErr string
	}{
		{
			name:   "apt-install",
			root:   debian,
			config: "packages:\n  install: [hello, curl=7.88.1-10+deb12u5]\n",
			rules: []*rule{
				{"dpkg-query", []reply{{1, []string{"curl\tamd64\t7.88.1-10+deb12u4\tii "}}}},
				{"madison", []reply{{0, []string{madison, "      curl | 7.88.1-10+deb12u5 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages"}}}},
			},
		},
		{
			name:   "apt-all-installed",
			root:   debian,
			config: "packages:\n  update: true\n  install: [hello, hello-traditional=2.10-3]\n",
			rules: []*rule{
				{"dpkg-query", []reply{{0, []string{"hello\tamd64\t2.10-3\tii ", "hello-traditional\tamd64\t2.10-3\tii "}}}},
			},
		},
		{
			name:   "apt-multiarch-installed",
			root:   debian,
			config: "packages:\n  install: ['libc6:i386', libc6]\n",
			rules: []*rule{
				{"dpkg-query", []reply{{0, []string{"libc6\tamd64\t2.36-9+deb12u10\tii ", "libc6\ti386\t2.36-9+deb12u10\tii "}}}},
			},
		},
		{
			name:   "apt-config-files-only-is-not-installed",
			root:   debian,
			config: "packages:\n  install: [hello]\n",
			rules: []*rule{
				{"dpkg-query", []reply{{0, []string{"hello\tamd64\t2.10-3\trc "}}}},
				{"madison", []reply{{0, []string{madison}}}},
			},
		},
		{
			name:   "apt-update-upgrade-pin",
			root:   debian,
			config: "packages:\n  update: true\n  upgrade: true\n  install: [hello=2.10-3]\n",
			rules: []*rule{
				{"dpkg-query", []reply{{1, nil}}},
				{"madison", []reply{{0, []string{madison}}}},
			},
		},
		{
			name:    "apt-missing-pin",
			root:    debian,
			config:  "packages:\n  install: [hello=9.9, nosuchpackage]\n",
			rules:   []*rule{{"dpkg-query", []reply{{1, nil}}}, {"madison", []reply{{0, []string{madison, "N: Unable to locate package nosuchpackage"}}}}},
			planErr: "c.yaml:2:13: packages.install[0].version: hello=9.9 is not available; apt offers 2.10-3\nc.yaml:2:24: packages.install[1].name: nosuchpackage is not available from apt's repositories",
		},
		{
			name:     "apt-missing-pin-after-update",
			root:     debian,
			config:   "packages:\n  update: true\n  install: [hello=9.9]\n",
			rules:    []*rule{{"dpkg-query", []reply{{1, nil}}}, {"madison", []reply{{0, []string{madison}}}}},
			applyErr: "c.yaml:3:13: packages.install[0].version: hello=9.9 is not available; apt offers 2.10-3",
		},
		{
			name:   "apt-transient-mirror-failure-retried",
			root:   debian,
			config: "packages:\n  install: [hello]\n",
			rules: []*rule{
				{"dpkg-query", []reply{{1, nil}}},
				{"madison", []reply{{0, []string{madison}}}},
				{"apt-get", []reply{{100, []string{"E: Failed to fetch http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-3_amd64.deb  Connection timed out"}}, {0, nil}}},
			},
		},
		{
			name:   "apt-interrupted-earlier-run-finished-first",
			root:   debian,
			config: "packages:\n  install: [hello]\n",
			rules: []*rule{
				{"dpkg-query", []reply{{1, nil}}},
				{"madison", []reply{{0, []string{madison}}}},
				{"install", []reply{{100, []string{"E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem."}}, {0, nil}}},
			},
		},
		{
			name:   "apt-lasting-failure-not-retried",
			root:   debian,
			config: "packages:\n  install: [hello]\n",
			rules: []*rule{
				{"dpkg-query", []reply{{1, nil}}},
				{"madison", []reply{{0, []string{madison}}}},
				{"apt-get", []reply{{100, []string{"E: Sub-process /usr/bin/dpkg returned an error code (1)"}}}},
			},
			applyErr: "apt-get -q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install -- hello failed with exit status 100: E: Sub-process /usr/bin/dpkg returned an error code (1)",
		},
		{
			name:   "apt-lock-busy-then-free",
			root:   debian,
			config: "packages:\n  update: true\n  install: [hello]\n",
			rules: []*rule{
				{"dpkg-query", []reply{{1, nil}}},
				{"madison", []reply{{0, []string{madison}}}},
				{"update", []reply{{100, []string{lockHeld}}, {100, []string{lockHeld}}, {0, nil}}},
			},
		},
		{
			name:     "apt-lock-busy-too-long",
			root:     debian,
			lockWait: 50 * time.Millisecond,
			collapse: true,
			config:   "packages:\n  update: true\n  install: [hello]\n",
			rules: []*rule{
				{"dpkg-query", []reply{{1, nil}}},
				{"update", []reply{{100, []string{lockHeld, "E: Unable to lock directory /var/lib/apt/lists/"}}}},
			},
			applyErr: "failed with exit status 100 (another process held the package lock for more than 50ms): " + lockHeld,
		},
		{
			name:    "apt-not-root",
			root:    debian,
			uid:     1000,
			config:  "packages:\n  install: [hello]\n",
			rules:   []*rule{{"dpkg-query", []reply{{1, nil}}}, {"madison", []reply{{0, []string{madison}}}}},
			planErr: "packages: installing into $ROOT runs apt inside it with chroot, which needs root; this runs as uid 1000: run bootstrap as root (sudo)",
		},
		{
			name:   "apt-package-file",
			root:   debian,
			config: "packages:\n  install: [hello]\n  files:\n    - source: file://$SRV/pool/x_1.0_all.deb\n      sha256: " + debHex + "\n",
			rules: []*rule{
				{"dpkg-deb", []reply{{0, []string{"x\t1.0"}}}},
				{"dpkg-query", []reply{{0, []string{"hello\tamd64\t2.10-3\tii "}}}},
			},
		},
		{
			name:    "apt-package-file-wrong-sha256",
			root:    debian,
			config:  "packages:\n  install: [hello]\n  files:\n    - source: file://$SRV/pool/x_1.0_all.deb\n      sha256: " + strings.Repeat("ab", 32) + "\n",
			planErr: "packages.files[0]: file://$SRV/pool/x_1.0_all.deb: sha256 mismatch: expected " + strings.Repeat("ab", 32) + ", got " + debHex,
		},
		{
			name:     "apt-rpm-file-refused",
			root:     debian,
			config:   "packages:\n  files:\n    - source: file://$SRV/pool/x-1.0.noarch.rpm\n      sha256: " + debHex + "\n",
			planErr:  "c.yaml:3:15: packages.files[0].source: file://$SRV/pool/x-1.0.noarch.rpm is a .rpm file; apt installs .deb files",
			badInput: true,
		},
		{
			name:     "forced-manager-missing",
			root:     debian,
			config:   "packages:\n  manager: dnf\n  install: [hello]\n",
			planErr:  "c.yaml:2:12: packages.manager: asks for dnf, but $ROOT has no dnf program (looked in usr/bin, usr/sbin, bin, sbin)",
			badInput: true,
		},
		{
			name:   "dnf-pin",
			root:   fedora,
			config: "packages:\n  update: true\n  install: [hello=2.12.1, tmux]\n",
			rules: []*rule{
				{"rpm", []reply{{1, []string{"package hello is not installed", "tmux\t0:3.4-1.fc40"}}}},
				{"dnf -q list", []reply{{0, []string{"Available Packages", "hello.x86_64    2.12.1-5.fc40    fedora", "hello.x86_64    2.12.1-6.fc40    updates"}}}},
			},
		},
		{
			name:   "yum-epoch-pin-installed",
			root:   []string{"etc/os-release=ID=amzn\n", "var/lib/rpm/", "usr/bin/yum="},
			config: "packages:\n  install: [{name: openssl, version: '1.0.2k-24.amzn2.0.4'}]\n",
			rules:  []*rule{{"rpm", []reply{{0, []string{"openssl\t1:1.0.2k-24.amzn2.0.4"}}}}},
		},
		{
			name:   "zypper",
			root:   []string{"etc/os-release=ID=opensuse-leap\n", "var/lib/rpm/", "usr/bin/zypper="},
			config: "packages:\n  install: [hello=2.12.1-150500.1.4]\n",
			rules: []*rule{
				{"rpm", []reply{{1, []string{"package hello is not installed"}}}},
				{"search", []reply{{0, []string{"S  | Name  | Type    | Version            | Arch   | Repository", "---+-------+---------+--------------------+--------+-----------", "   | hello | package | 2.12.1-150500.1.4 | x86_64 | Main Repository"}}}},
			},
		},
		{
			name:   "apk",
			root:   append([]string{"lib/apk/db/installed=C:x\nP:musl\nV:1.2.4-r2\n\nP:hello\nV:2.12-r0\n\n"}, alpine[0], alpine[2]),
			config: "packages:\n  install: [hello, tmux=3.3a-r5]\n",
			rules:  []*rule{{"search", []reply{{0, []string{"tmux-3.3a-r5", "tmux-doc-3.3a-r5"}}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := t.TempDir()
			os.MkdirAll(filepath.Join(srv, "pool"), 0o755)
			for _, n := range []string{"x_1.0_all.deb", "x-1.0.noarch.rpm"} {
				os.WriteFile(filepath.Join(srv, "pool", n), []byte(aDeb), 0o644)
			}
			rootDir := makeRoot(t, tt.root...)
			rec := &recorder{rules: tt.rules}
			var logs bytes.Buffer
			in, env := testInput(t, rootDir, strings.ReplaceAll(tt.config, "$SRV", srv), &logs)
			c := Capability{Runner: rec, Geteuid: func() int { return tt.uid }, Retry: fastRetry, LockWait: tt.lockWait, HostHas: func(string) bool { return true }}

			steps, err := c.Steps(context.Background(), in)
			scrub := func(s string) string {
				return strings.NewReplacer(rootDir, "$ROOT", srv, "$SRV", in.Scratch, "$SCRATCH").Replace(s)
			}
			var out strings.Builder
			if tt.planErr != "" {
				if err == nil || !strings.Contains(scrub(err.Error()), tt.planErr) {
					t.Fatalf("plan err = %v, want %q", err, tt.planErr)
				}
				if badinput.Is(err) != tt.badInput {
					t.Errorf("bad input (exit 2) = %v, want %v", badinput.Is(err), tt.badInput)
				}
				fmt.Fprintf(&out, "plan error:\n%s\n", scrub(err.Error()))
			} else if err != nil {
				t.Fatal(err)
			} else {
				p := &plan.Plan{Instance: "i-1", Datasource: "none", Steps: steps}
				p.Write(&out)
			}
			fmt.Fprintf(&out, "--- plan-time calls\n%s", scrub(rec.transcript(rootDir, tt.collapse)))
			planned := len(rec.calls)
			if tt.planErr == "" {
				var applyErr error
				for _, s := range steps {
					for _, a := range s.Actions {
						if applyErr = a.Apply(context.Background(), env); applyErr != nil {
							break
						}
					}
				}
				if tt.applyErr != "" {
					if applyErr == nil || !strings.Contains(applyErr.Error(), tt.applyErr) {
						t.Fatalf("apply err = %v, want %q", applyErr, tt.applyErr)
					}
					fmt.Fprintf(&out, "--- apply error\n%s\n", scrub(applyErr.Error()))
				} else if applyErr != nil {
					t.Fatal(applyErr)
				}
				rec.calls = rec.calls[planned:]
				fmt.Fprintf(&out, "--- apply calls\n%s", scrub(rec.transcript(rootDir, tt.collapse)))
			}
			golden.Check(t, filepath.Join("testdata", "transcripts", tt.name+".golden"), []byte(scrub(out.String())))
			if ents, _ := os.ReadDir(filepath.Join(rootDir, filesDir)); len(ents) != 0 {
				t.Errorf("package files left in the root: %v", ents)
			}
			for _, added := range []string{"etc/resolv.conf", "usr/sbin/policy-rc.d"} {
				if _, err := os.Lstat(filepath.Join(rootDir, added)); err == nil {
					t.Errorf("%s left in the root", added)
				}
			}
		})
	}
}

// testInput is a capability input over rootDir and a plan env to apply with.
func testInput(t *testing.T, rootDir, yaml string, logs *bytes.Buffer) (*capability.Input, *plan.Env) {
	t.Helper()
	root, err := rootfs.Open(rootDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	red := &secret.Redactor{}
	log := slog.New(red.Handler(slog.NewTextHandler(logs, nil)))
	scratch := t.TempDir()
	in := &capability.Input{
		Config: decodeConfig(t, yaml), Facts: map[string]string{"instance_id": "i-1"}, Datasource: "none",
		Fetcher: fetch.New(fetch.Options{Logger: log}), Redactor: red, Log: log, Root: root, Scratch: scratch,
	}
	return in, &plan.Env{Root: root, Log: log, Redactor: red, Scratch: scratch}
}
