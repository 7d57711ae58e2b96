// Package engine wires the stages of a run: sources → decode → merge →
// validate → plan → apply. Each stage is a function over values; the engine
// only orders them, journals them and keeps the per-instance rules.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/opsboot/bootstrap/internal/badinput"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/datasource"
	"github.com/opsboot/bootstrap/internal/fetch"
	"github.com/opsboot/bootstrap/internal/secret"
	"github.com/opsboot/bootstrap/internal/userdata"
)

// Limits on configuration input. User-data itself is at most 16 KiB on EC2;
// layers are where configuration grows, so they get more room.
const (
	maxLayerBytes = 1 << 20
	maxLayers     = 32
	maxDepth      = 8
)

// Input says where a run's configuration comes from.
type Input struct {
	// Datasource is auto, ec2, file or none.
	Datasource    string
	DatasourceDir string
	// IMDSEndpoint overrides the IMDS address (else env
	// AWS_EC2_METADATA_SERVICE_ENDPOINT, else the link-local default).
	IMDSEndpoint string
	// Config is "" (user-data from the datasource), a file path, s3://…,
	// https://… or "-" (stdin).
	Config string
	Stdin  io.Reader
	// Root is the target root the datasource reads machine facts from.
	Root     string
	Log      *slog.Logger
	Redactor *secret.Redactor
	// KeepOwnership: files keep the invoking user's ownership (unprivileged
	// demo or image builds); see rootfs.Root.KeepOwnership.
	KeepOwnership bool
	// Image marks an image build (--image): capabilities write and install
	// only what belongs in an image and leave per-instance identity
	// (registrations, keys, device-bound network config) to first boot.
	Image bool
	// Stage, when set, is told when the datasource and config stages end, so
	// a run can journal them.
	Stage func(step string, start time.Time, err error)
}

func (in Input) stage(step string, start time.Time, err error) {
	if in.Stage != nil {
		in.Stage(step, start, err)
	}
}

// Loaded is a validated configuration and everything it was made from.
type Loaded struct {
	Meta    *datasource.Metadata
	Config  *config.Config
	Scripts []userdata.Script
	Layers  []string // layer sources in merge order
	Fetcher *fetch.Fetcher
	EC2     *datasource.EC2 // nil unless the ec2 datasource is used
}

// IMDSRequests is the number of requests sent to IMDS so far.
func (l *Loaded) IMDSRequests() int64 {
	if l == nil || l.EC2 == nil {
		return 0
	}
	return l.EC2.Requests()
}

// Load runs the first stages: it reads the datasource and the configuration,
// decodes user-data, resolves includes, merges and validates. Nothing on the
// target is touched. On error the *Loaded, when not nil, holds only what
// was learned before it (Meta, EC2, Fetcher may be nil): a failed run still
// reports its instance and request counts.
func Load(ctx context.Context, in Input) (l *Loaded, err error) {
	start := time.Now()
	stage := StepConfig // a local --config is read before the datasource
	partial := &Loaded{}
	defer func() {
		if err != nil {
			l = partial
			in.stage(stage, start, err)
		} else {
			in.stage(StepConfig, start, nil)
		}
	}()
	log := in.Log
	// A local --config is read first: its imds settings govern how the
	// datasource talks to IMDS (allow_v1 cannot come from the user-data that
	// IMDS itself serves).
	var (
		rootDoc      *userdata.Decoded
		rootSource   string
		remoteConfig = isRemote(in.Config)
	)
	if in.Config != "" && !remoteConfig {
		raw, name, rerr := readLocal(in.Config, in.Stdin)
		if rerr != nil {
			return nil, badinput.Wrap(rerr)
		}
		in.Redactor.AddDocument(string(raw))
		if rootDoc, err = decode(in.Redactor, name, raw); err != nil {
			return nil, badinput.Wrap(err)
		}
		rootSource = name
	}
	boot, err := bootSettings(rootDoc, nil, "imds")
	if err != nil {
		return nil, badinput.Wrap(err)
	}

	stage = StepDatasource
	ds, ec2, err := openDatasource(in, boot, rootDoc == nil && !remoteConfig)
	if err != nil {
		return nil, badinput.Wrap(err)
	}
	partial.EC2 = ec2
	meta, err := ds.Fetch(ctx)
	if err != nil {
		return nil, err
	}
	partial.Meta = meta
	if len(meta.UserData) > 0 {
		in.Redactor.AddDocument(string(meta.UserData))
	}
	log.Info("datasource read", "datasource", meta.Source, "instance", meta.InstanceID, "region", meta.Region)
	in.stage(StepDatasource, start, nil)
	stage, start = StepConfig, time.Now()
	facts := meta.Facts()

	if rootDoc == nil && !remoteConfig {
		rootSource = "user-data"
		if rootDoc, err = decode(in.Redactor, rootSource, meta.UserData); err != nil {
			return nil, badinput.Wrap(err)
		}
	}
	// The aws section of the first-level documents configures the fetcher
	// that reads everything else.
	if rootDoc != nil {
		if boot, err = bootSettings(rootDoc, facts, "imds", "aws"); err != nil {
			return nil, badinput.Wrap(err)
		}
	}
	f := newFetcher(boot, meta, ec2, log, in.Redactor)
	partial.Fetcher = f
	if remoteConfig {
		raw, ferr := f.Bytes(ctx, in.Config, "", maxLayerBytes)
		if ferr != nil {
			return nil, ferr
		}
		in.Redactor.AddDocument(string(raw))
		rootSource = fetch.DisplaySource(in.Config)
		if rootDoc, err = decode(in.Redactor, rootSource, raw); err != nil {
			return nil, badinput.Wrap(err)
		}
	}
	for _, w := range rootDoc.Warnings {
		log.Warn(w, "source", rootSource)
	}
	if len(rootDoc.Layers) == 0 && len(rootDoc.Scripts) == 0 {
		log.Warn("no configuration: the source is empty, so there is nothing to do", "source", rootSource, "datasource", meta.Source)
	}

	r := &resolver{fetch: f, facts: facts, log: log, seen: map[string]bool{}}
	for _, l := range rootDoc.Layers {
		if err := r.add(ctx, l, 0); err != nil {
			return nil, err
		}
	}
	merged, err := config.Merge(r.layers)
	if err != nil {
		return nil, badinput.Wrap(err)
	}
	// ENIs cost IMDS requests (datasource.FetchENIs): read only for a
	// configuration with a network: section, and not for an image, which
	// has none of its own. Their facts can be used in the configuration.
	if src, _, _ := merged.Origin("network"); ec2 != nil && src != "" && !in.Image {
		if err := ec2.FetchENIs(ctx, meta); err != nil {
			return nil, err
		}
		facts = meta.Facts()
	}
	cfg, err := merged.Decode(facts)
	if err != nil {
		return nil, badinput.Wrap(err)
	}
	for _, file := range cfg.Files {
		if file.Secret && file.Content != nil {
			in.Redactor.Add(*file.Content)
		}
	}
	sources := make([]string, len(r.layers))
	for i, l := range r.layers {
		sources[i] = l.Source
	}
	return &Loaded{Meta: meta, Config: cfg, Scripts: rootDoc.Scripts, Layers: sources, Fetcher: f, EC2: ec2}, nil
}

// resolver orders layers: a layer's includes come before it, in the order
// listed, so the including document has the last word (as a Dockerfile over
// its base image).
type resolver struct {
	fetch  *fetch.Fetcher
	facts  map[string]string
	log    *slog.Logger
	seen   map[string]bool
	layers []*config.Layer
}

func (r *resolver) add(ctx context.Context, l *config.Layer, depth int) error {
	incs, err := l.Includes(func(s string) (string, error) { return config.Expand(s, r.facts) })
	if err != nil {
		return badinput.Wrap(err)
	}
	for _, inc := range incs {
		// Layers are named as they may be shown: a presigned URL without
		// its signature, credential and token.
		shown := fetch.DisplaySource(inc.Source)
		if depth+1 > maxDepth {
			return badinput.Wrap(fmt.Errorf("%s: include %s: includes nested deeper than %d", l.Source, shown, maxDepth))
		}
		if r.seen[inc.Source] {
			return badinput.Wrap(fmt.Errorf("%s: include %s: included twice (or a cycle)", l.Source, shown))
		}
		r.seen[inc.Source] = true
		if len(r.layers) >= maxLayers {
			return badinput.Wrap(fmt.Errorf("%s: more than %d layers", l.Source, maxLayers))
		}
		start := time.Now()
		raw, err := r.fetch.Bytes(ctx, inc.Source, inc.SHA256, maxLayerBytes)
		if err != nil {
			return fmt.Errorf("include from %s: %w", l.Source, err)
		}
		r.log.Info("layer fetched", "source", shown, "bytes", len(raw), "duration", time.Since(start).Round(time.Millisecond).String())
		child, err := config.ParseLayer(shown, raw)
		if err != nil {
			return badinput.Wrap(err)
		}
		if err := r.add(ctx, child, depth+1); err != nil {
			return err
		}
	}
	if len(r.layers) >= maxLayers {
		return badinput.Wrap(fmt.Errorf("%s: more than %d layers", l.Source, maxLayers))
	}
	r.layers = append(r.layers, l)
	return nil
}

// bootSettings decodes only the named sections (imds, aws) of the first-level
// documents: they are needed before the rest of the configuration can be
// fetched. Before the datasource has answered, facts is nil and only imds is
// read, so an aws section may still use ${region}.
func bootSettings(doc *userdata.Decoded, facts map[string]string, sections ...string) (*config.Config, error) {
	var layers []*config.Layer
	if doc != nil {
		for _, l := range doc.Layers {
			sub, err := config.LayerFromNode(l.Source, pick(l.Root, sections...))
			if err != nil {
				return nil, err
			}
			layers = append(layers, sub)
		}
	}
	merged, err := config.Merge(layers)
	if err != nil {
		return nil, err
	}
	if facts == nil {
		facts = map[string]string{}
	}
	return merged.Decode(facts)
}

// pick returns a mapping node holding only the named keys of m.
func pick(m *yaml.Node, keys ...string) *yaml.Node {
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if m == nil || m.Kind != yaml.MappingNode {
		return out
	}
	out.Line, out.Column = m.Line, m.Column
	for i := 0; i+1 < len(m.Content); i += 2 {
		for _, k := range keys {
			if m.Content[i].Value == k {
				out.Content = append(out.Content, m.Content[i], m.Content[i+1])
			}
		}
	}
	return out
}

func openDatasource(in Input, boot *config.Config, wantUserData bool) (datasource.Datasource, *datasource.EC2, error) {
	kind := in.Datasource
	if kind == "" || kind == "auto" {
		var why string
		kind, why = datasource.Detect(in.Root)
		if kind == "none" && in.DatasourceDir != "" {
			kind, why = "file", "--datasource-dir given"
		}
		in.Log.Info("datasource chosen", "datasource", kind, "reason", why)
	}
	switch kind {
	case "ec2":
		ec2 := datasource.NewEC2(datasource.EC2Options{
			Endpoint:     in.IMDSEndpoint,
			EndpointMode: boot.IMDS.EndpointMode,
			AllowV1:      boot.IMDS.AllowV1,
			Deadline:     boot.IMDS.Deadline.Duration,
			UserData:     wantUserData,
			Tags:         boot.IMDS.Tags,
			Logger:       in.Log,
		})
		return ec2, ec2, nil
	case "file":
		if in.DatasourceDir == "" {
			return nil, nil, errors.New("--datasource file needs --datasource-dir")
		}
		return datasource.NewFile(in.DatasourceDir, in.Root), nil, nil
	case "none":
		return datasource.None(in.Root), nil, nil
	}
	return nil, nil, fmt.Errorf("unknown datasource %q (want auto, ec2, file or none)", kind)
}

func newFetcher(boot *config.Config, meta *datasource.Metadata, ec2 *datasource.EC2, log *slog.Logger, red *secret.Redactor) *fetch.Fetcher {
	o := fetch.Options{
		Region:      boot.AWS.Region,
		S3Endpoint:  boot.AWS.S3.Endpoint,
		S3PathStyle: boot.AWS.S3.PathStyle,
		Deadline:    boot.AWS.Deadline.Duration,
		Logger:      log,
		Redactor:    red,
	}
	o.IAMPropagation = boot.AWS.IAMPropagation.Duration
	if o.Region == "" {
		o.Region = meta.Region
	}
	if ec2 != nil {
		o.IMDS = ec2.CredentialsClient()
		o.Role = ec2.Role
	}
	return fetch.New(o)
}

// decode decodes user-data and registers what it hid under an encoding (gzip,
// base64 parts) as secret as the raw user-data, and its scripts line by line.
func decode(red *secret.Redactor, source string, raw []byte) (*userdata.Decoded, error) {
	doc, err := userdata.Decode(source, raw)
	if doc != nil {
		for _, p := range doc.Plain {
			red.AddDocument(string(p))
		}
		for _, sc := range doc.Scripts {
			red.AddScript(string(sc.Body))
		}
	}
	return doc, err
}

func isRemote(src string) bool {
	return strings.HasPrefix(src, "s3://") || strings.HasPrefix(src, "https://")
}

// readLocal reads a --config given as a path, file:// URL or "-".
func readLocal(src string, stdin io.Reader) ([]byte, string, error) {
	name, r := "stdin", stdin
	if src != "-" {
		name = strings.TrimPrefix(src, "file://")
		f, err := os.Open(name)
		if err != nil {
			return nil, "", err
		}
		defer f.Close()
		r = f
	} else if r == nil {
		r = os.Stdin
	}
	b, err := io.ReadAll(io.LimitReader(r, maxLayerBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("%s: reading configuration: %w", name, err)
	}
	if len(b) > maxLayerBytes {
		return nil, "", fmt.Errorf("%s: configuration larger than %d bytes", name, maxLayerBytes)
	}
	return b, name, nil
}
