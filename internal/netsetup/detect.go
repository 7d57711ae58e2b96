package netsetup

import (
	"fmt"

	"github.com/opsboot/bootstrap/internal/rootfs"
)

// wants are where systemd keeps an enabled unit's symlink.
func enabled(root *rootfs.Root, unit string, targets ...string) bool {
	for _, t := range targets {
		if exists(root, "/etc/systemd/system/"+t+".wants/"+unit) {
			return true
		}
	}
	return false
}

func exists(root *rootfs.Root, p string) bool {
	_, err := root.Stat(p)
	return err == nil
}

func anyExists(root *rootfs.Root, ps ...string) (string, bool) {
	for _, p := range ps {
		if exists(root, p) {
			return p, true
		}
	}
	return "", false
}

// detect picks the stack from what the target root has installed and
// enabled, in the order cloud-init's distro lists agree on: netplan where
// installed (Ubuntu), legacy network-scripts (old RHEL), an enabled
// NetworkManager, an enabled networkd, then ifupdown (Debian).
func detect(root *rootfs.Root) (Stack, error) {
	nm := enabled(root, "NetworkManager.service", "multi-user.target")
	networkdOn := enabled(root, "systemd-networkd.service", "multi-user.target", "sockets.target") ||
		enabled(root, "systemd-networkd.socket", "sockets.target")
	if p, ok := anyExists(root, "/usr/sbin/netplan", "/usr/bin/netplan", "/sbin/netplan"); ok {
		st := Stack{Renderer: "netplan", Backend: "networkd", Reason: p + " is installed; networkd renders it"}
		if nm && !networkdOn {
			st.Backend, st.Reason = "NetworkManager", p+" is installed and NetworkManager is enabled (networkd is not)"
		}
		return st, nil
	}
	if p, ok := anyExists(root, "/etc/sysconfig/network-scripts/ifup-eth", "/usr/sbin/ifup-eth"); ok {
		return Stack{Renderer: "ifcfg", Reason: p + " (legacy network-scripts) is installed"}, nil
	}
	if nm {
		return Stack{Renderer: "networkmanager", Reason: "NetworkManager.service is enabled"}, nil
	}
	if networkdOn {
		return Stack{Renderer: "networkd", Reason: "systemd-networkd is enabled"}, nil
	}
	if p, ok := anyExists(root, "/usr/sbin/ifup", "/sbin/ifup"); ok && exists(root, interfacesPath) {
		return Stack{Renderer: "ifupdown", Reason: p + " and " + interfacesPath + " exist"}, nil
	}
	return Stack{}, fmt.Errorf("no network stack found under %s: no netplan, network-scripts, enabled NetworkManager or networkd, nor ifupdown with %s; install one or set network.renderer", root.Dir(), interfacesPath)
}

// forced is a stack named in network.renderer.
func forced(root *rootfs.Root, name string) Stack {
	st := Stack{Renderer: name, Reason: "network.renderer says so"}
	if name == "netplan" {
		st.Backend = "networkd"
		if enabled(root, "NetworkManager.service", "multi-user.target") && !enabled(root, "systemd-networkd.service", "multi-user.target") {
			st.Backend = "NetworkManager"
		}
	}
	return st
}
