/*
 * members.h - the member table: who is in the cluster and how they are.
 *
 * States of a member, as this node sees it:
 *
 *     alive --probe and indirect probes fail--> suspect
 *     suspect --answers--> alive
 *     suspect --suspicion timeout--> unhealthy --heard from again--> alive
 *     any --unheard for failure_timeout--> unhealthy
 *     any --leave announced--> left (sticky until a new incarnation)
 *     any --unheard for removal_timeout--> dropped from the table
 *
 * "suspect" is reported as status "alive" with "suspect": true, so that a
 * member that pauses for a moment is never reported unhealthy.
 *
 * Merging gossip: a record with a higher incarnation (the member's process
 * start time) replaces ours wholesale: a restarted member is alive again.
 * With the same incarnation, last_seen takes the newest value and "left"
 * is sticky; other nodes' unhealthy opinions are not adopted (each node
 * decides from its own probes and the suspicion broadcasts).
 *
 * Size: the table holds at most max_members entries, self included
 * (members_set_max, MEMBERS_MAX_DEFAULT until then).  A new member past the
 * cap is refused, never let in by evicting a member already there; members
 * in the table keep being updated.  last_seen values from peers are capped
 * at this node's clock, so no record escapes removal_timeout.
 *
 * Threads: every function takes the table's one mutex; any thread.
 */
#ifndef KVS_MEMBERS_H
#define KVS_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "member.h"

struct members;

#define MEMBERS_MAX_DEFAULT 1024   /* cap on the table until members_set_max() */

/* Timeouts (ms) the table applies in members_tick(). */
struct members_timeouts {
	int64_t suspicion_ms;   /* suspect -> unhealthy */
	int64_t failure_ms;     /* unheard -> unhealthy */
	int64_t removal_ms;     /* unheard -> dropped */
};

/* Creates the table holding only self, capped at MEMBERS_MAX_DEFAULT.  NULL on OOM. */
struct members *members_new(const struct member *self, const struct members_timeouts *t);
void members_free(struct members *m);

/*
 * Caps the table at max members, self included (cfg.max_members; values
 * below 1 count as 1).  Members already in the table stay even if there
 * are more of them: only new ones are refused.  Call before threads start.
 */
void members_set_max(struct members *m, size_t max);

/* New members refused because the table was full, since members_new(). */
uint64_t members_refused_total(struct members *m);


/*
 * A join request.  Adds or refreshes in.  Refuses, with a message in err,
 * with KVS_ECONFLICT when another live member holds the same id at another
 * address, KVS_ETOOBIG when in is new and the table is full (max_members),
 * KVS_ENOMEM when out of memory.
 */
int members_join(struct members *m, const struct member *in, char *err, size_t errlen);

/*
 * Merges gossiped records (see the rules above).  Returns how many new
 * members were left out because the table was full (0 normally); each is
 * counted in members_refused_total() and logged (member_refused, rate
 * limited) already.
 */
size_t members_merge(struct members *m, const struct member *in, size_t n);

/* Direct contact with a member (it sent us a request or answered one). */
void members_heard(struct members *m, const char *id, int64_t now);

/* Marks id suspect (unless already suspect/unhealthy/left); true if it changed. */
bool members_suspect(struct members *m, const char *id, int64_t now);

/* Marks id left (if its incarnation is not newer than incarnation). */
void members_left(struct members *m, const char *id, int64_t incarnation);

/* Marks this node left (before it announces its departure). */
void members_self_left(struct members *m);

/* Applies the timeouts; logs every status change. */
void members_tick(struct members *m, int64_t now);

/*
 * Copies the table into a malloc'd array (caller frees), self included,
 * self's last_seen set to now.  Returns the count; *out NULL on OOM.
 */
size_t members_snapshot(struct members *m, struct member **out);

/*
 * Fills out with up to n distinct random members other than self whose
 * status is in the mask (1 << MEMBER_*).  Returns how many.
 */
size_t members_random(struct members *m, unsigned mask, struct member *out, size_t n);

/* Looks a member up by id; true and *out filled if found. */
bool members_get(struct members *m, const char *id, struct member *out);

/* Members counted as alive (alive or suspect), self included. */
int members_alive_count(struct members *m);

/* Other members alive or suspect (self excluded), without taking the lock:
 * the count as of the last change, for hot paths such as every write. */
size_t members_live_peers(struct members *m);

/* Counts per status (index enum member_status), self included. */
void members_counts(struct members *m, int counts[4]);


#endif
