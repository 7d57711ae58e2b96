package userdata

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/golden"

	"gopkg.in/yaml.v3"

	"github.com/opsboot/bootstrap/internal/config"
)

var testFacts = map[string]string{
	"instance_id": "i-0123456789abcdef0", "region": "eu-west-1", "availability_zone": "eu-west-1a",
	"instance_type": "t3.micro", "ami_id": "ami-0abc", "local_ipv4": "10.0.0.12",
	"mac": "0a:1b:2c:3d:4e:5f", "account_id": "123456789012", "role": "web", "hostname": "ip-10-0-0-12",
}

// render prints what Decode made of a user-data: each layer as a tree
// with the position of every node, each script, the warnings, and the
// configuration the layers decode to.
func render(d *Decoded, err error) string {
	var b strings.Builder
	if err != nil {
		return "errors:\n" + err.Error() + "\n"
	}
	for _, l := range d.Layers {
		fmt.Fprintf(&b, "layer %s:\n", l.Source)
		dump(&b, l.Root, "  ")
	}
	for _, s := range d.Scripts {
		fmt.Fprintf(&b, "script %s (%d bytes):\n", s.Name, len(s.Body))
		for _, line := range strings.Split(strings.TrimRight(string(s.Body), "\n"), "\n") {
			fmt.Fprintf(&b, "  | %s\n", line)
		}
	}
	for _, w := range d.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	m, err := config.Merge(d.Layers)
	if err != nil {
		return b.String() + "merge errors:\n" + err.Error() + "\n"
	}
	cfg, err := m.Decode(testFacts)
	if err != nil {
		return b.String() + "decode errors:\n" + err.Error() + "\n"
	}
	out, _ := yaml.Marshal(cfg.Files)
	b.WriteString("decoded files:\n")
	b.Write(out)
	if len(cfg.Packages.Install) > 0 || cfg.Packages.Update || cfg.Packages.Upgrade {
		out, _ = yaml.Marshal(cfg.Packages)
		b.WriteString("decoded packages:\n")
		b.Write(out)
	}
	if cfg.Network.Hostname != "" || cfg.Network.EtcHosts != nil {
		out, _ = yaml.Marshal(struct {
			Hostname string `yaml:"hostname"`
			EtcHosts *bool  `yaml:"etc_hosts"`
		}{cfg.Network.Hostname, cfg.Network.EtcHosts})
		b.WriteString("decoded network:\n")
		b.Write(out)
	}
	if len(cfg.Commands) > 0 {
		out, _ = yaml.Marshal(cfg.Commands)
		b.WriteString("decoded commands:\n")
		b.Write(out)
	}
	if cfg.Puppet != nil {
		out, _ = yaml.Marshal(cfg.Puppet)
		b.WriteString("decoded puppet:\n")
		b.Write(out)
	}
	return b.String()
}

func dump(b *strings.Builder, n *yaml.Node, indent string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			fmt.Fprintf(b, "%s%s @%d:%d", indent, k.Value, k.Line, k.Column)
			if v.Kind == yaml.ScalarNode {
				fmt.Fprintf(b, " = %q %s @%d:%d\n", v.Value, v.ShortTag(), v.Line, v.Column)
				continue
			}
			b.WriteString("\n")
			dump(b, v, indent+"  ")
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			fmt.Fprintf(b, "%s- @%d:%d\n", indent, c.Line, c.Column)
			dump(b, c, indent+"  ")
		}
	case yaml.ScalarNode:
		fmt.Fprintf(b, "%s%q %s @%d:%d\n", indent, n.Value, n.ShortTag(), n.Line, n.Column)
	}
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			// Files are stored with LF; MIME as cloud-init writes it uses LF too.
			got := render(Decode("user-data", data))
			golden.Check(t, strings.TrimSuffix(file, ".txt")+".golden", []byte(got))
		})
	}
}
