package systemd

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkRerun plans and applies 20 enabled units that are already in
// place: the cost a rerun pays to find that nothing needs doing.
func BenchmarkRerun(b *testing.B) {
	root := openRoot(b, b.TempDir())
	var units []Unit
	for i := range 20 {
		f, err := ParseFile("", []byte(fmt.Sprintf("[Service]\nExecStart=/bin/true %d\n[Install]\nWantedBy=multi-user.target\n", i)))
		if err != nil {
			b.Fatal(err)
		}
		units = append(units, Unit{Name: fmt.Sprintf("u%d.service", i), Body: f, Enable: yes()})
	}
	env, _ := newEnv(b, root)
	for i := 0; i <= b.N; i++ {
		if i == 1 {
			b.ResetTimer() // the first round writes
		}
		actions, err := Actions(root, units...)
		if err != nil {
			b.Fatal(err)
		}
		for _, a := range actions {
			if err := a.Apply(context.Background(), env); err != nil {
				b.Fatal(err)
			}
		}
	}
}
