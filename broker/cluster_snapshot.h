/*
 * cluster_snapshot.h — snapshots of the routing table in the JetStream object store (issue 13),
 * so that a node started empty loads the table in bulk and applies only the stream's tail.
 *
 * Where: object `table` of the bucket `cluster.stream` + "_SNAP", in NATS's object store layout
 * (stream OBJ_<bucket>; chunks on $O.<bucket>.C.<nuid>, the object's description — JSON
 * ObjectInfo: name, nuid, size, chunks, digest "SHA-256=<base64url>" — on $O.<bucket>.M.<name in
 * base64url>, rolled up), readable with the `nats object` tools. The libnats 3.4 C client has no
 * object store API; this file speaks its layout on plain JetStream calls.
 *
 * What: "RHSNAP1\0", then every record as kind (1 byte), length (4 bytes, big-endian), the
 * record packed as LMDB stores it (rp_dump: one read snapshot, the applied sequence read in the
 * same snapshot — the table and the sequence always match); the sequence is in the description
 * ("roamhub table at stream sequence S").
 *
 * Who writes: the node configured with cluster.snapshot_every = N (> 0), after every N changes it
 * applied (docs/SCALING.md: one node should); the previous snapshot's chunks are purged once
 * the new one is described, and cluster.c trims the table stream to the N changes before it.
 * Who reads: a node whose applied sequence is 0 (empty database), or older than the trimmed
 * stream's first change (replace), before it subscribes to the stream.
 */
#ifndef RH_CLUSTER_SNAPSHOT_H
#define RH_CLUSTER_SNAPSHOT_H

#include "cluster_table.h"
#include "config.h"
#include "rh_err.h"
#include "rp.h"

#include <nats/nats.h>
#include <stdint.h>

#define CLUSTER_SNAPSHOT_MAX (4ull << 30) /* largest snapshot a node loads, bytes */

/* Writes a snapshot of db's table and the mark `mark` (rp_dump) as the bucket's `table` object
 * (the bucket's stream created with cfg->cluster_replicas when missing). Blocks: one JetStream
 * round trip per 128 KiB chunk; call it off the applier and the event loops. *seq = the sequence
 * written. Errors: RH_EAGAIN (JetStream did not take it; diag says why), RH_EIO, RH_ENOMEM. */
int cluster_snapshot_write(jsCtx *js, const rh_config_t *cfg, rp_db_t *db, const char *mark,
                           uint64_t *seq, rh_diag_t *diag);

/* The sequence of the bucket's latest snapshot, 0 when there is none. Errors: RH_EAGAIN. */
int cluster_snapshot_seq(jsCtx *js, const rh_config_t *cfg, uint64_t *seq, rh_diag_t *diag);

/* Loads the latest snapshot into db: every record upserted (batches of 50,000 per transaction),
 * the mark `mark` set to its sequence by the last commit, then reg(reg_arg, RP_KIND_MEMBER,
 * NULL, NULL, ...) — the registry rebuilt from LMDB. replace = 1 (a node whose table is older
 * than the trimmed stream's first change): one transaction that clears every record first, so
 * the table is the snapshot's, and readers see the old one until the commit. *seq = its
 * sequence, 0 (nothing done) when there is none. A crash part-way leaves the mark unset: the
 * next start loads it again. Blocks while it reads; call it before the node subscribes to the
 * stream, with the applier held. Errors: RH_EAGAIN (not readable now: retry), RH_EINVAL (not a
 * snapshot, digest or size wrong: diag says which), RH_EFULL, RH_EIO, RH_ENOMEM. */
int cluster_snapshot_load(natsConnection *nc, jsCtx *js, const rh_config_t *cfg, rp_db_t *db,
                          const char *mark, int replace, table_registry_fn reg, void *reg_arg,
                          uint64_t *seq, rh_diag_t *diag);

#endif
