/*
 * peer_addr.h — which addresses the hub may connect to on a member's behalf (issue 16 item 7:
 * server-side request forgery). Member-written endpoint URLs must not make the hub POST to
 * itself, to loopback, or into the operator's private network.
 *
 * Refused unless a configured range (relay.endpoint_allow_ranges, docs/CONFIG.md) contains the
 * address: IPv4 0.0.0.0/8 (unspecified, "this network"), 127.0.0.0/8 (loopback), 10.0.0.0/8,
 * 172.16.0.0/12, 192.168.0.0/16 (private, RFC 1918), 100.64.0.0/10 (shared, RFC 6598),
 * 169.254.0.0/16 (link-local), 224.0.0.0/4 (multicast), 240.0.0.0/4 (reserved, broadcast);
 * IPv6 ::/128, ::1/128, fe80::/10 (link-local), fec0::/10 (site-local), fc00::/7 (unique local),
 * ff00::/8 (multicast), ::/96 (IPv4-compatible); IPv4-mapped (::ffff:a.b.c.d) and NAT64
 * (64:ff9b::/96) addresses are judged by the IPv4 address they carry.
 * Always refused, whatever the ranges allow: the hub's own listeners (address and port; a
 * listener on an unspecified address is reached through loopback and every local interface
 * address). An unspecified destination (0.0.0.0, ::) is judged as loopback, which is where the
 * kernel sends it.
 *
 * The policy is checked where the connection is made (peer_client, after DNS: the address
 * actually connected to) and, for URLs holding a literal address, when the endpoint is written
 * (admin API). A policy is immutable once the daemon's threads run: peer_addr_policy_add_self
 * is called during start-up only, and checks are then read-only and thread-safe.
 */
#ifndef PEER_ADDR_H
#define PEER_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

#include "rh_err.h"

typedef struct peer_addr_policy peer_addr_policy_t;

/* A CIDR range: family AF_INET or AF_INET6, network address bytes (4 or 16), prefix bits. */
typedef struct peer_addr_range {
    int family;
    uint8_t addr[16];
    unsigned bits;
} peer_addr_range_t;

/* Parses "127.0.0.0/8", "::1/128", "fd00::/8" or a bare address (a /32 or /128). Bits set
 * beyond the prefix are refused. Errors: RH_EINVAL with diag naming `field`. */
int peer_addr_range_parse(const char *text, const char *field, peer_addr_range_t *out,
                          rh_diag_t *diag);

/* A policy allowing the `n` ranges given as text (each as peer_addr_range_parse; `field` names
 * the list in diagnostics). Errors: RH_EINVAL (bad range), RH_ENOMEM. */
int peer_addr_policy_new(const char *const *ranges, size_t n, const char *field,
                         peer_addr_policy_t **out, rh_diag_t *diag);

/* Adds one of the hub's own listeners (numeric bind address, bound port): connections to it are
 * refused. Start-up only (before other threads use the policy). Errors: RH_EINVAL (not a
 * numeric address), RH_ENOMEM (more than 8 listeners, or local addresses unreadable). */
int peer_addr_policy_add_self(peer_addr_policy_t *p, const char *bind_addr, uint16_t port);

/* Frees the policy; NULL is a no-op. */
void peer_addr_policy_free(peer_addr_policy_t *p);

/* Checks a destination (AF_INET/AF_INET6 sockaddr with its port). NULL policy: everything is
 * allowed (tools such as roamns reach the hub on loopback). Returns RH_OK, or RH_EPERM with
 * diag: "<address> is a loopback address (not in relay.endpoint_allow_ranges)" or
 * "<address>:<port> is the hub's own listener". Other families: RH_EPERM. */
int peer_addr_check(const peer_addr_policy_t *p, const struct sockaddr *sa, rh_diag_t *diag);

/* peer_addr_check for a numeric address text and port (the admin API's write-time check of a
 * URL with a literal address). Errors: as peer_addr_check; RH_EINVAL when not numeric. */
int peer_addr_check_text(const peer_addr_policy_t *p, const char *addr, uint16_t port,
                         rh_diag_t *diag);

#endif
