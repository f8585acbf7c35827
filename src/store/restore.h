/*
 * restore.h - loading a snapshot file (snapshot.h) into a new data
 * directory: what `kvs --restore FILE [CONFIG]` runs (SPEC section 11).
 *
 * The records go through the store's one write door as a peer's versions
 * (store_apply_batch, STORE_REMOTE), so every derived index (time index,
 * buckets, expiry) is built the way any write builds it; versions,
 * tombstones, expiries and origins stay exactly as in the file.  The
 * change index starts empty, as on any new data dir.  The work happens in
 * "<data_dir>.restoring", which becomes data_dir by one rename only after
 * the whole file was read and its count and checksum verified: a refused
 * file leaves no data dir behind.
 *
 * Threads: the calling thread only; nothing else may use data_dir.
 */
#ifndef KVS_RESTORE_H
#define KVS_RESTORE_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

/* What a restore loaded. */
struct restore_result {
	uint64_t records;                       /* records written */
	uint64_t tombstones;                    /* of which delete markers */
	char node_id[RECORD_ORIGIN_MAX + 1];    /* the node the snapshot was taken on */
	int64_t taken_ms;                       /* when */
};

/*
 * Restores the snapshot in file into data_dir, which must be absent or an
 * empty directory.  max_record bounds one record (the config's
 * max_value_bytes plus a record's own bytes).  The restored dir's
 * "last_alive" is the snapshot's time, so a node started on it catches up
 * from there and, if the snapshot is older than tombstone_grace, does not
 * hand peers records that deletes purged since (main.c, check_absence).
 * Returns 0 with *out filled; KVS_EINVAL when the file is refused (not a
 * snapshot, another format version, truncated, damaged) or data_dir is not
 * empty; KVS_EIO or KVS_ENOMEM otherwise; on error err says why and
 * nothing is left behind (data_dir as it was, no "<data_dir>.restoring").
 */
int store_restore(const char *file, const char *data_dir, size_t max_record,
		  struct restore_result *out, char *err, size_t errlen);

#endif
