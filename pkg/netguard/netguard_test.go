package netguard

import (
	"net/netip"
	"testing"
)

func TestRefused(t *testing.T) {
	for _, tc := range []struct {
		ip, want string
	}{
		{"169.254.169.254", "a cloud metadata service"},
		{"fd00:ec2::254", "a cloud metadata service"},
		{"169.254.1.1", "a link-local address"},
		{"fe80::1", "a link-local address"},
		{"127.0.0.1", "a loopback address"},
		{"127.255.0.9", "a loopback address"},
		{"::1", "a loopback address"},
		{"::ffff:127.0.0.1", "a loopback address"},
		{"::ffff:169.254.169.254", "a cloud metadata service"},
		{"10.1.2.3", "a private network address"},
		{"172.16.0.1", "a private network address"},
		{"192.168.1.1", "a private network address"},
		{"fc00::1", "a private network address"},
		{"100.64.0.1", "in the shared address space (100.64.0.0/10)"},
		{"0.0.0.0", "an unspecified address"},
		{"::", "an unspecified address"},
		{"224.0.0.1", "a multicast or broadcast address"},
		{"255.255.255.255", "a multicast or broadcast address"},
		{"240.0.0.1", "a reserved address"},
		{"64:ff9b::a9fe:a9fe", "a cloud metadata service (via NAT64)"},
		{"64:ff9b::7f00:1", "a loopback address (via NAT64)"},
		{"2002:a9fe:a9fe::1", "a cloud metadata service (via 6to4)"},
		{"2002:0a00:0001::1", "a private network address (via 6to4)"},
		{"172.32.0.1", ""},
		{"100.128.0.1", ""},
		{"8.8.8.8", ""},
		{"64:ff9b::808:808", ""}, // NAT64 of a public address
		{"2606:4700:4700::1111", ""},
	} {
		if got := Refused(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("Refused(%s) = %q, want %q", tc.ip, got, tc.want)
		}
	}
}

func TestRefusedHost(t *testing.T) {
	for _, tc := range []struct {
		host, want string
	}{
		{"localhost", "a loopback address"},
		{"LOCALHOST.", "a loopback address"},
		{"api.localhost", "a loopback address"},
		{"metadata.google.internal", "a cloud metadata service"},
		{"Metadata", "a cloud metadata service"},
		{"instance-data.ec2.internal.", "a cloud metadata service"},
		{"2130706433", "an IPv4 address not in dotted-decimal form"},
		{"0x7f000001", "an IPv4 address not in dotted-decimal form"},
		{"0177.0.0.1", "an IPv4 address not in dotted-decimal form"},
		{"127.1", "an IPv4 address not in dotted-decimal form"},
		{"127.0.0.1", ""}, // a literal address: Refused judges it
		{"hooks.example.com", ""},
		{"localhost.example.com", ""},
		{"1.2.3.4.5", ""},
		{"0xfoo", ""},
		{"", ""},
	} {
		if got := RefusedHost(tc.host); got != tc.want {
			t.Errorf("RefusedHost(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}

// FuzzRefused: every address gets an answer without a panic, and an
// IPv4-mapped address gets the same answer as the IPv4 address.
func FuzzRefused(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::1", "64:ff9b::a9fe:a9fe", "8.8.8.8", "2002::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = RefusedHost(s)
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return
		}
		got := Refused(ip)
		if ip.Is4() {
			if mapped := Refused(netip.AddrFrom16(ip.As16())); mapped != got {
				t.Fatalf("%s: %q, mapped %q", s, got, mapped)
			}
		}
	})
}
