package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/opsboot/bootstrap/internal/puppet"
)

// autosignName is the name puppetserver can run the binary by (a symlink):
// puppetserver passes only the certname, so the name says what to do.
const autosignName = "bootstrap-autosign"

// autosignArgs turns an invocation as bootstrap-autosign into
// `bootstrap autosign CERTNAME`.
func autosignArgs(argv0 string, args []string) []string {
	if filepath.Base(argv0) == autosignName {
		return append([]string{"autosign"}, args...)
	}
	return args
}

// cmdAutosign is puppetserver's policy-based autosign executable: the
// certname in the argument, the CSR on stdin, exit 0 signs. Exit 1 is a
// refusal (the reason is logged); 2 a policy puppetserver's operator must
// fix. Either way the CSR stays pending.
func cmdAutosign(_ context.Context, c *cli, args []string) int {
	if len(args) != 1 || args[0] == "" {
		fmt.Fprintf(c.stderr, "bootstrap autosign: want one argument, the certname (puppetserver passes it), got %d\n", len(args))
		return exitUsage
	}
	certname := args[0]
	p, err := puppet.LoadPolicy(c.policy)
	if err != nil {
		c.log.Error("autosign: cannot read the policy; not signing", "certname", certname, "error", c.redactor.Redact(err.Error()))
		return exitUsage
	}
	c.redactor.Add(p.Password)
	csr, err := io.ReadAll(io.LimitReader(c.stdin, puppet.MaxCSR+1))
	switch {
	case err != nil:
		c.log.Warn("autosign: refused", "certname", certname, "reason", "reading the CSR: "+err.Error())
		return exitFail
	case len(csr) > puppet.MaxCSR:
		c.log.Warn("autosign: refused", "certname", certname, "reason", fmt.Sprintf("the CSR is over %d bytes", puppet.MaxCSR))
		return exitFail
	}
	if reason := p.Decide(certname, csr); reason != "" {
		c.log.Warn("autosign: refused", "certname", certname, "reason", reason)
		return exitFail
	}
	c.log.Info("autosign: signing", "certname", certname)
	return exitOK
}
