package httpdest

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/samsa-dev/samsa/pkg/netguard"
)

// RefusedError is the reason a destination address is not dialled: it is
// in a range a webhook must not reach unless the flow allows private
// networks (server-side request forgery guard).
type RefusedError struct {
	Addr   string
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("destination address %s refused: it is %s (set allowPrivateNetwork on the flow's destination to allow it)", e.Addr, e.Reason)
}

// checkHost refuses names of metadata services and loopback names before
// anything is resolved (their addresses are refused when dialled anyway;
// the name gives a clearer error).
func checkHost(host string) error {
	if reason := netguard.RefusedHost(host); reason != "" {
		return &RefusedError{Addr: host, Reason: reason}
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
	if reason := netguard.Refused(ip); reason != "" {
		return &RefusedError{Addr: host, Reason: reason}
	}
	return nil
}
