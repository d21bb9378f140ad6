// Package netguard decides which network addresses a webhook may reach: the
// guard against server-side request forgery. Flow validation uses it on the
// host of a destination URL, the HTTP destination on every address it dials
// (after name resolution, so DNS rebinding cannot get past it). A flow lifts
// it with allowPrivateNetwork.
package netguard

import (
	"net/netip"
	"strings"
)

type prefixReason struct {
	p      netip.Prefix
	reason string
}

// refused are the ranges a webhook may not reach, most specific first.
// Cloud metadata addresses (169.254.169.254, fd00:ec2::254) also fall in
// the link-local and unique-local ranges; naming them is clearer.
var refused = func() []prefixReason {
	var out []prefixReason
	add := func(reason string, cidrs ...string) {
		for _, c := range cidrs {
			out = append(out, prefixReason{netip.MustParsePrefix(c), reason})
		}
	}
	add("a cloud metadata service", "169.254.169.254/32", "fd00:ec2::254/128", "169.254.170.2/32")
	add("a link-local address", "169.254.0.0/16", "fe80::/10")
	add("a loopback address", "127.0.0.0/8", "::1/128")
	add("a private network address", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
	add("in the shared address space (100.64.0.0/10)", "100.64.0.0/10")
	add("an unspecified address", "0.0.0.0/8", "::/128")
	add("a multicast or broadcast address", "224.0.0.0/4", "255.255.255.255/32", "ff00::/8")
	add("a reserved address", "240.0.0.0/4", "192.0.0.0/24", "198.18.0.0/15", "64:ff9b:1::/48")
	return out
}()

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// Refused returns why ip may not be reached ("a loopback address", "a
// private network address (via NAT64)", ...), or "" for a public address.
// IPv4-mapped addresses are judged by the IPv4 address; NAT64 and 6to4
// addresses by the IPv4 address they reach.
func Refused(ip netip.Addr) string {
	ip = ip.Unmap()
	for _, r := range refused {
		if r.p.Contains(ip) {
			return r.reason
		}
	}
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip):
			if r := Refused(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})); r != "" {
				return r + " (via NAT64)"
			}
		case sixToFour.Contains(ip):
			if r := Refused(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})); r != "" {
				return r + " (via 6to4)"
			}
		}
	}
	return ""
}

// metadataHosts are names of cloud metadata services.
var metadataHosts = map[string]bool{
	"metadata.google.internal":   true,
	"metadata":                   true,
	"instance-data":              true,
	"instance-data.ec2.internal": true,
}

// RefusedHost returns why a host name may not be reached before anything
// resolves it, or "": loopback names (localhost, *.localhost), names of
// cloud metadata services, and IPv4 addresses not in dotted-decimal form
// (2130706433, 0x7f000001, 0177.0.0.1, 127.1), which some resolvers
// (inet_aton) read as addresses no name check can judge. Literal addresses
// are for Refused.
func RefusedHost(host string) string {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	switch {
	case h == "localhost" || strings.HasSuffix(h, ".localhost"):
		return "a loopback address"
	case metadataHosts[h]:
		return "a cloud metadata service"
	case looseIPv4(h):
		return "an IPv4 address not in dotted-decimal form"
	}
	return ""
}

// looseIPv4 reports whether host is a number, or dot-separated numbers
// (decimal, 0x hex or 0 octal), that is not a canonical dotted quad: an
// address some resolvers accept and no top-level domain can be.
func looseIPv4(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil || host == "" {
		return false
	}
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return false
	}
	for _, p := range parts {
		digits := p
		if len(p) > 2 && p[:2] == "0x" {
			if strings.Trim(p[2:], "0123456789abcdef") != "" {
				return false
			}
			continue
		}
		if digits == "" || strings.Trim(digits, "0123456789") != "" {
			return false
		}
	}
	return true
}
