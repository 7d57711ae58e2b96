package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/golden"

	"gopkg.in/yaml.v3"
)

// parseCase splits a case file into its layers: after a free-text
// comment, each layer starts with a line "-- name --".
func parseCase(data string) (names, bodies []string) {
	for _, line := range strings.SplitAfter(data, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "-- ") && strings.HasSuffix(trimmed, " --") {
			names = append(names, strings.TrimSuffix(strings.TrimPrefix(trimmed, "-- "), " --"))
			bodies = append(bodies, "")
			continue
		}
		if len(bodies) > 0 {
			bodies[len(bodies)-1] += line
		}
	}
	return names, bodies
}

// renderCase runs the whole pipeline over a case's layers: parse, includes,
// merge, decode. It prints the errors, or the includes, the decoded config
// and where each file entry came from.
func renderCase(names, bodies []string) string {
	var b strings.Builder
	var layers []*Layer
	var errs []string
	for i, name := range names {
		l, err := ParseLayer(name, []byte(bodies[i]))
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		layers = append(layers, l)
	}
	if errs != nil {
		return "errors:\n" + strings.Join(errs, "\n") + "\n"
	}
	for _, l := range layers {
		incs, err := l.Includes(func(s string) (string, error) { return Expand(s, testFacts) })
		if err != nil {
			return "errors:\n" + err.Error() + "\n"
		}
		for _, inc := range incs {
			fmt.Fprintf(&b, "include from %s: %s sha256=%q\n", l.Source, inc.Source, inc.SHA256)
		}
	}
	m, err := Merge(layers)
	if err != nil {
		return "errors:\n" + err.Error() + "\n"
	}
	cfg, err := m.Decode(testFacts)
	if err != nil {
		return "errors:\n" + err.Error() + "\n"
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return "marshal: " + err.Error()
	}
	b.WriteString("config:\n")
	b.Write(out)
	b.WriteString("origins:\n")
	paths := []string{"imds.deadline", "aws.region", "aws.deadline", "aws.s3.endpoint", "aws.s3.path_style"}
	for i := range cfg.Files {
		paths = append(paths, fmt.Sprintf("files[%d].path", i))
	}
	for _, p := range paths {
		src, line, col := m.Origin(p)
		if src == "" {
			fmt.Fprintf(&b, "  %s: default\n", p)
			continue
		}
		fmt.Fprintf(&b, "  %s: %s:%d:%d\n", p, src, line, col)
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/cases/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			names, bodies := parseCase(string(data))
			got := renderCase(names, bodies)
			golden.Check(t, strings.TrimSuffix(file, ".txt")+".golden", []byte(got))
		})
	}
}
