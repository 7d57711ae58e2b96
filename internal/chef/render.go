package chef

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/opsboot/bootstrap/internal/config"
)

// rubyString quotes s as a Ruby double-quoted literal: no interpolation,
// no escapes left active.
func rubyString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `#`, `\#`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// ClientRB renders client.rb: cc_chef's keys and values (see docs for
// where we are deliberately safer), in knife's order.
func ClientRB(ch *config.Chef, nodeName string) []byte {
	var b strings.Builder
	b.WriteString("# Written by bootstrap; changes are overwritten on the next run.\n")
	line := func(key, value string) { fmt.Fprintf(&b, "%-26s %s\n", key, value) }
	if ch.LocalMode {
		line("local_mode", "true")
		line("chef_repo_path", rubyString(ch.RepoPath))
	} else {
		line("chef_server_url", rubyString(ch.ServerURL))
		line("validation_client_name", rubyString(ch.ValidationName))
	}
	if isSystem(ch) || ch.Registration == config.ChefRegistrationClassic {
		// The operator's file, used where it is; ours stay in memory.
		line("validation_key", rubyString(ch.ValidationKey))
	}
	line("client_key", rubyString(ch.ClientKey))
	if ch.ChefLicense != "" {
		line("chef_license", rubyString(ch.ChefLicense))
	}
	line("log_level", ":"+ch.LogLevel)
	if ch.LogLocation == "STDOUT" || ch.LogLocation == "STDERR" {
		line("log_location", ch.LogLocation)
	} else {
		line("log_location", rubyString(ch.LogLocation))
	}
	line("node_name", rubyString(nodeName))
	line("environment", rubyString(ch.Environment))
	line("json_attribs", rubyString(ch.JSONAttribs))
	line("ssl_verify_mode", ":"+ch.SSLVerifyMode)
	line("verify_api_cert", fmt.Sprint(ch.SSLVerifyMode == "verify_peer"))
	line("trusted_certs_dir", rubyString("/etc/chef/trusted_certs"))
	if ch.EncryptedDataBagSecret != "" {
		line("encrypted_data_bag_secret", rubyString(ch.EncryptedDataBagSecret))
	}
	line("file_cache_path", rubyString(ch.FileCachePath))
	line("file_backup_path", rubyString(ch.FileBackupPath))
	line("pid_file", rubyString(ch.PidFile))
	if ch.HTTPProxy != "" {
		line("http_proxy", rubyString(ch.HTTPProxy))
	}
	if ch.HTTPSProxy != "" {
		line("https_proxy", rubyString(ch.HTTPSProxy))
	}
	if ch.NoProxy != "" {
		line("no_proxy", rubyString(ch.NoProxy))
	}
	return []byte(b.String())
}

// FirstBootJSON renders first-boot.json: the initial attributes at the top
// level with the run_list (or policy_name and policy_group), as cc_chef and
// knife write it.
func FirstBootJSON(ch *config.Chef) ([]byte, error) {
	attrs := map[string]any{}
	if ch.InitialAttributes != "" {
		if err := json.Unmarshal([]byte(ch.InitialAttributes), &attrs); err != nil {
			return nil, fmt.Errorf("chef.initial_attributes: %w", err)
		}
	}
	if ch.PolicyName != "" {
		attrs["policy_name"], attrs["policy_group"] = ch.PolicyName, ch.PolicyGroup
	} else {
		rl := ch.RunList
		if rl == nil {
			rl = []string{}
		}
		attrs["run_list"] = rl
	}
	out, err := json.MarshalIndent(attrs, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
