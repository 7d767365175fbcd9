package origdst

import "unsafe"

// unsafePort views sin6_port (network byte order, stored in a host-order
// uint16 field) as its two bytes.
func unsafePort(p *uint16) unsafe.Pointer { return unsafe.Pointer(p) }
