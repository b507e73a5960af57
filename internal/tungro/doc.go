// Package tungro writes wireguard-go's decrypted packets to a Linux TUN
// device with TCP segments coalesced into GSO super-packets, without
// clearing or copying them.
//
// wireguard-go's own TUN writer (tun.NativeTun.Write) coalesces too, but
// it does so by growing the first segment's buffer, clearing the new room
// and copying each further segment's payload into it. On a gateway that
// is one memory clear and one copy of nearly every byte received, in the
// one goroutine per peer that writes to the TUN, plus the page faults of
// first touching the rest of each 64 KiB buffer. Here a super-packet is
// written with one writev(2) whose first iovec is the virtio-net header
// and the first segment (headers rewritten in place) and whose further
// iovecs are the other segments' payloads where they already lie; the
// kernel copies each byte once, as it would anyway.
//
// # What is merged
//
// The rules are the kernel's own GRO rules, so that the kernel, cutting a
// super-packet back into segments, reproduces the segments it was made of.
// One difference: the IPv4 IDs of packets with DF set are not compared
// (Linux GRO wants them equal or counting up); the kernel renumbers them
// when it cuts the super-packet, and RFC 6864 leaves them meaningless.
//   - IPv4 without options or fragmentation and with a valid header
//     checksum, or IPv6 whose next header is TCP; lengths that match the
//     packet;
//   - TCP flags ACK, or ACK|PSH on the last segment only;
//   - the same addresses, ports and acknowledgment number; equal TOS or
//     traffic class and flow label, TTL or hop limit, DF, TCP data offset,
//     flags, window, urgent pointer and options; for IPv4 without DF, IDs
//     counting up from the first segment's;
//   - sequence numbers that follow on, every payload as long as the first
//     but the last, which may be shorter; at most 64 segments and 65,535
//     bytes of IP length;
//   - a valid TCP checksum on every merged segment: a corrupt segment is
//     written alone, as it came, rather than hidden in a super-packet
//     whose checksum the kernel computes afresh.
//
// Packets are only merged within one Write (one batch). A flow's packets
// keep their order: a TCP packet that cannot join its flow's super-packet
// closes it. Packets that are not TCP are handed, as one batch, to the
// wrapped device's Write, which keeps wireguard-go's UDP GRO. A batch
// holding an IPv4 fragment or an IPv6 extension header, whose flow its
// first header does not show, goes to the wrapped device whole, so that
// nothing can overtake it.
//
// # Privacy
//
// Nothing here logs. The only counts are Stats, totals for the device.
package tungro
