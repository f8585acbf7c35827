/*
 * vote.h - the tally of a conflict vote (SPEC section 5), apart from the
 * resolver that gathers the votes (conflict.h), so that the rule can be
 * read and tested on its own.
 *
 * Each member answers which version of a path it holds, if any.  The
 * winner: the newest timestamp whatever the votes; among versions of that
 * timestamp, the one held by most voters; on a tie, the version held by
 * the member with the earliest joined_timestamp; on a further tie, by the
 * smallest node_id (bytewise).  Voters holding nothing do not count.  A
 * tombstone is a version like any other.  Every node applies the same rule
 * to the same answers, so the cluster settles on one version.
 *
 * Pure function, no locks: any thread.
 */
#ifndef KVS_VOTE_H
#define KVS_VOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "version.h"

/* A member's answer about one path, as the vote counts it. */
struct vote {
	char id[CONFIG_ID_MAX];   /* voter */
	int64_t joined_ts;        /* voter's joined_timestamp */
	bool has;                 /* holds some version */
	struct kvs_version v;     /* that version (meaningless unless has) */
};

/*
 * Among votes[0..n) (borrowed), returns the index of a vote holding the
 * winning version (rule above), or -1 if nobody holds one (n may be 0).
 * The result names the same version whatever the order of the votes.
 */
int vote_tally(const struct vote *votes, size_t n);

#endif
