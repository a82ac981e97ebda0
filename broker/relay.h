/*
 * relay.h — the TS002 passive-roaming relay pipeline (one entry point per worker thread).
 *
 * Every request on the TS002 listener goes through these stages, each deciding or refusing
 * once (and logging once, where the decision is made):
 *   1. authenticate the caller (TLS client certificate, Bearer API key, or the development
 *      loopback identity) — HTTP 401 when nobody is recognised;
 *   2. decode and validate the body with the TS002 codec — a TS002 answer with the codec's
 *      ResultCode and Description (HTTP 400 only when the answer cannot be addressed);
 *   3. SenderID must be one of the member's NetIDs — UnknownSender, nothing forwarded;
 *      then the member's rate limit;
 *   4. route (route.c, a pure decision): uplinks by DevAddr prefix / join route / ReceiverID,
 *      downlinks and everything else by ReceiverID; never back to the sender; routing policy of the
 *      forwarder for the message class; strip signal quality / localization;
 *   5. forward to the receiver's endpoint (the received bytes when already in the receiver's
 *      dialect, else re-encoded), and bridge sync/async answers back to the sender.
 * Failures always produce a TS002 answer for the sender: no route -> UnknownDevAddr /
 * UnknownDevEUI / UnknownReceiver; policy -> NoRoamingAgreement naming the flag; receiver
 * timeout or unreachable -> Other (XmitFailed for downlinks).
 */
#ifndef RH_RELAY_H
#define RH_RELAY_H

#include "worker.h"
#include "http_server.h"

/* hs_handler_fn for the TS002 listener; arg is the worker_t. */
void relay_handle_request(hs_req_t *req, void *arg);

/* Fails every transaction owned by worker w (shutdown). */
void relay_worker_fini(worker_t *w);

#endif
