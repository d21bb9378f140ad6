package httpdest

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
)

// RefusedError is the reason a destination address is not dialled: it is
// in a range a webhook must not reach unless the flow allows private
// networks (server-side request forgery guard).
type RefusedError struct {
	Addr   string
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("destination address %s refused: %s (set allow_private_network on the flow's destination to allow it)", e.Addr, e.Reason)
}

// metadataHosts are names of cloud metadata services. Their addresses are
// refused anyway; refusing the names too gives a clearer error and covers
// resolvers that map them elsewhere.
var metadataHosts = map[string]bool{
	"metadata.google.internal":   true,
	"metadata":                   true,
	"instance-data":              true,
	"instance-data.ec2.internal": true,
}

type prefixReason struct {
	p      netip.Prefix
	reason string
}

// refused are the ranges refused without allow_private_network. Cloud
// metadata addresses (169.254.169.254, fd00:ec2::254) fall in the
// link-local and unique-local ranges.
var refused = func() []prefixReason {
	var out []prefixReason
	add := func(reason string, cidrs ...string) {
		for _, c := range cidrs {
			out = append(out, prefixReason{netip.MustParsePrefix(c), reason})
		}
	}
	add("cloud metadata service", "169.254.169.254/32", "fd00:ec2::254/128", "169.254.170.2/32")
	add("link-local", "169.254.0.0/16", "fe80::/10")
	add("loopback", "127.0.0.0/8", "::1/128")
	add("private network", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
	add("shared address space", "100.64.0.0/10")
	add("unspecified", "0.0.0.0/8", "::/128")
	add("multicast or broadcast", "224.0.0.0/4", "255.255.255.255/32", "ff00::/8")
	add("reserved", "240.0.0.0/4", "192.0.0.0/24", "198.18.0.0/15", "64:ff9b:1::/48")
	return out
}()

// checkIP returns why ip may not be dialled, or "".
func checkIP(ip netip.Addr) string {
	ip = ip.Unmap()
	for _, r := range refused {
		if r.p.Contains(ip) {
			return r.reason
		}
	}
	// NAT64 and 6to4 embed IPv4 addresses that could be private.
	if ip.Is6() {
		b := ip.As16()
		if netip.MustParsePrefix("64:ff9b::/96").Contains(ip) {
			v4 := netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
			if reason := checkIP(v4); reason != "" {
				return reason + " (NAT64)"
			}
		}
		if netip.MustParsePrefix("2002::/16").Contains(ip) {
			v4 := netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
			if reason := checkIP(v4); reason != "" {
				return reason + " (6to4)"
			}
		}
	}
	return ""
}

// checkHost refuses names of metadata services before anything is resolved.
func checkHost(host string) error {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if metadataHosts[h] {
		return &RefusedError{Addr: host, Reason: "cloud metadata service"}
	}
	return nil
}

// control runs on every connection the transport makes, after DNS
// resolution and before connecting: the address checked is the one dialled,
// so a name that resolves to a public address first and a private one later
// (DNS rebinding) cannot get through.
func control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return &RefusedError{Addr: address, Reason: "unparsable address"}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return &RefusedError{Addr: address, Reason: "not an IP address"}
	}
	if reason := checkIP(ip); reason != "" {
		return &RefusedError{Addr: host, Reason: reason}
	}
	return nil
}
