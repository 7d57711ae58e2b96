package chef

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/command"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/pkgmgr"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/retry"
)

// ChefPackage is the package omnibus builds and distributions name chef.
const ChefPackage = "chef"

// Artifact is omnitruck's answer: one package file and its digest.
type Artifact struct {
	URL     string `json:"url"`
	SHA256  string `json:"sha256"`
	Version string `json:"version"`
}

// Platform is what omnitruck's p, pv and m parameters say, from the
// target root (never the host's /).
type Platform struct{ Name, Version, Machine string }

// DetectPlatform reads the root's os-release as mixlib-install's install.sh
// maps it: Debian and RHEL-likes by major version, Ubuntu by release.
func DetectPlatform(root string) (Platform, error) {
	id, like := pkgmgr.OSRelease(root)
	data, err := readOSRelease(root)
	if err != nil {
		return Platform{}, err
	}
	ver := data["VERSION_ID"]
	major, _, _ := strings.Cut(ver, ".")
	p := Platform{Machine: machine(runtime.GOARCH)}
	isLike := func(s string) bool {
		for _, l := range like {
			if l == s {
				return true
			}
		}
		return false
	}
	switch {
	case id == "debian":
		p.Name, p.Version = "debian", major
	case id == "ubuntu":
		p.Name, p.Version = "ubuntu", ver
	case id == "amzn":
		p.Name, p.Version = "amazon", major
	case id == "rhel" || id == "centos" || id == "rocky" || id == "almalinux" || id == "ol" || isLike("rhel"):
		p.Name, p.Version = "el", major
	case id == "sles" || id == "opensuse-leap":
		p.Name, p.Version = id, major
	default:
		return p, fmt.Errorf("omnitruck has no builds for %q (from the root's os-release); use install_type: package or none", id)
	}
	if p.Version == "" {
		return p, fmt.Errorf("the root's os-release has no VERSION_ID")
	}
	return p, nil
}

func readOSRelease(root string) (map[string]string, error) {
	out := map[string]string{}
	var data []byte
	var err error
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if data, err = readRootFile(root, p); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("the root has no os-release to tell its platform: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok {
			out[k] = strings.Trim(v, `"'`)
		}
	}
	return out, nil
}

// machine is uname -m as omnitruck wants it.
func machine(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "i386"
	}
	return goarch
}

// MetadataURL is omnitruck's metadata endpoint for one query.
func MetadataURL(base, channel, version string, p Platform) string {
	q := url.Values{"v": {version}, "p": {p.Name}, "pv": {p.Version}, "m": {p.Machine}}
	if version == "" || version == "latest" {
		q.Set("v", "latest")
	}
	return strings.TrimSuffix(base, "/") + "/" + channel + "/chef/metadata?" + q.Encode()
}

// QueryOmnitruck asks omnitruck which package to install, retrying
// transient failures (tries in all, at least one).
func QueryOmnitruck(ctx context.Context, client *http.Client, u string, tries int) (*Artifact, error) {
	var art Artifact
	pol := retry.Policy{Initial: 500 * time.Millisecond, Max: 5 * time.Second, Deadline: 2 * time.Minute, MaxAttempts: max(tries, 1)}
	err := retry.Do(ctx, pol, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return retry.Permanent(err)
		}
		req.Header.Set("Accept", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("omnitruck %s: %w", u, err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		switch {
		case resp.StatusCode == http.StatusNotFound:
			return retry.Permanent(fmt.Errorf("omnitruck %s: no chef build for that version and platform (404)", u))
		case resp.StatusCode >= 500:
			return fmt.Errorf("omnitruck %s: %s", u, resp.Status)
		case resp.StatusCode != http.StatusOK:
			return retry.Permanent(fmt.Errorf("omnitruck %s: %s", u, resp.Status))
		}
		if err := json.Unmarshal(data, &art); err != nil || art.URL == "" || len(art.SHA256) != 64 {
			return retry.Permanent(fmt.Errorf("omnitruck %s: the answer has no url and sha256", u))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	art.SHA256 = strings.ToLower(art.SHA256)
	return &art, nil
}

// versionMatches: a partial pin (18, 18.4) matches 18.4.12.
func versionMatches(installed, pin string) bool {
	if pin == "" || pin == "latest" {
		return installed != ""
	}
	v, _, _ := strings.Cut(installed, "-") // Debian revision
	return v == pin || strings.HasPrefix(v, pin+".")
}

// installStep installs chef-client through the root's package manager:
// from the distribution (package), from an omnitruck package file whose
// sha256 the fetcher checks (omnitruck), or not at all (none: checked).
func (c Capability) installStep(ctx context.Context, in *capability.Input, ch *config.Chef) (*plan.Step, error) {
	if ch.InstallType == config.ChefInstallNone {
		spec := command.Spec{Argv: []string{ChefClient, "--version"}, Timeout: time.Minute, Name: "chef-client --version",
			Explain: map[int]string{127: "install_type is none, but the image has no chef-client; bake it in or use install_type: package or omnitruck"}}
		if c.ChefClient != "" {
			spec.Argv[0] = c.ChefClient
		} else if root := in.Root.Dir(); root != "/" {
			spec.Chroot = root
		}
		return &plan.Step{Name: StepInstall, Frequency: plan.Always,
			Actions: []plan.Action{command.NewAction("chef-client --version", spec, in.Redactor)}}, nil
	}
	mgr := c.PackageManager
	if mgr == nil {
		var err error
		if mgr, err = pkgmgr.Detect(pkgmgr.Options{Root: in.Root.Dir(), Runner: command.Exec{Redactor: in.Redactor}, Log: in.Log}, "auto"); err != nil {
			return nil, fmt.Errorf("chef.install_type %s: %w", ch.InstallType, err)
		}
	}
	have, err := mgr.Installed(ctx, []string{ChefPackage})
	if err != nil {
		return nil, fmt.Errorf("chef: is chef installed: %w", err)
	}
	if v := have[ChefPackage]; v != "" && versionMatches(v, ch.Version) && !ch.ForceInstall {
		return &plan.Step{Name: StepInstall, Frequency: plan.PerInstance, Done: in.IsDone(StepInstall),
			Actions: []plan.Action{&note{kind: "package", path: ChefPackage, text: "already installed: " + v}}}, nil
	}
	pk := config.Packages{Manager: config.ManagerAuto}
	switch ch.InstallType {
	case config.ChefInstallPackage:
		pk.Install = []config.Package{{Name: ChefPackage, Version: ch.Version}}
	case config.ChefInstallOmnitruck:
		p, err := DetectPlatform(in.Root.Dir())
		if err != nil {
			return nil, fmt.Errorf("chef.install_type omnitruck: %w", err)
		}
		client := &http.Client{Transport: c.Transport}
		art, err := QueryOmnitruck(ctx, client, MetadataURL(ch.OmnibusURL, ch.Channel, ch.Version, p), ch.OmnibusTries)
		if err != nil {
			return nil, fmt.Errorf("chef: %w", err)
		}
		if ch.Version != "" && ch.Version != "latest" && !versionMatches(art.Version, ch.Version) {
			return nil, fmt.Errorf("chef: omnitruck answered version %s for the pin %s", art.Version, ch.Version)
		}
		pk.Files = []config.PackageFile{{Source: art.URL, SHA256: art.SHA256}}
	}
	sub := *in
	cfg := *in.Config
	cfg.Packages = pk
	sub.Config = &cfg
	sub.Done = func(string) bool { return in.IsDone(StepInstall) }
	steps, err := pkgmgr.Capability{Manager: mgr}.Steps(ctx, &sub)
	if err != nil {
		if ch.InstallType == config.ChefInstallOmnitruck {
			// The digest is omnitruck's, not the operator's: say so.
			return nil, fmt.Errorf("chef: the package omnitruck named (%s/%s/chef/metadata) failed its check, nothing installed: %s",
				strings.TrimSuffix(ch.OmnibusURL, "/"), ch.Channel, strings.TrimPrefix(err.Error(), "packages.files[0]: "))
		}
		return nil, fmt.Errorf("chef: install: %w", err)
	}
	if len(steps) != 1 {
		return nil, fmt.Errorf("chef: install: planned %d package steps", len(steps))
	}
	steps[0].Name = StepInstall
	return steps[0], nil
}

// readRootFile reads a small file inside root, confined to it.
func readRootFile(root, p string) ([]byte, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.Open(strings.TrimPrefix(p, "/"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 64<<10))
}
