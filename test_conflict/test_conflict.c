/*
 * test_conflict.c - writes two data directories that conflict on purpose.
 *
 *   test_conflict DIR1 DIR2
 *
 * Through the node's own storage code (store_open, store_apply with
 * STORE_REMOTE and explicit versions, store_meta_put) it writes into two
 * fresh data directories the same paths with the same timestamp but
 * different UUIDs and values: a handful of objects and scalars, plus one
 * path that is a tombstone (a delete) in DIR1 and a value in DIR2.  It then
 * prints what it wrote, one line per path and directory.
 *
 * It also writes each directory's "joined_timestamp" (meta, 8 bytes
 * big-endian milliseconds, as main.c reads it) so that DIR1's node is the
 * older member: DIR1 joined a minute before the tool ran, DIR2 half a
 * minute before.  In a cluster of the two nodes every conflicting path gets
 * one vote per version, a tie, which SPEC section 5 settles in favour of the
 * version held by the oldest member: DIR1's versions, the tombstone
 * included, must end up on both nodes.
 *
 * A directory is "fresh" if it does not exist (it is created; its parent
 * must exist) or is empty; anything else is refused, so the tool never mixes
 * its data into a real store.  Single-threaded; exits 0 on success, 1 on a
 * storage failure, 2 on bad usage or a refused directory (then nothing is
 * created).
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "json.h"
#include "kvs.h"
#include "log.h"
#include "record.h"
#include "store.h"
#include "version.h"

/* ------------------------------------------------------------------ types */

#define EXIT_FAIL 1  /* storage failure (or a bug in the table below) */
#define EXIT_USAGE 2 /* bad usage or a refused directory */

#define DIR1_JOINED_AGO_MS 60000 /* DIR1 joined a minute ago: the older member */
#define DIR2_JOINED_AGO_MS 30000 /* DIR2 joined half a minute ago */

/* One conflicting path: its JSON text in each directory; NULL = tombstone. */
struct conflict_path {
	const char *path;
	const char *value[2]; /* [0] DIR1, [1] DIR2 */
};

/* What was written for one path in one directory, for the report. */
struct written {
	struct kvs_version v;
	const char *value;    /* NULL for a tombstone */
};

/* ---------------------------------------------------------------- statics */

static const struct conflict_path paths[] = {
	{ "users/alice/profile",
	  { "{\"name\":\"Alice\",\"city\":\"Paris\",\"written_by\":\"dir1\"}",
	    "{\"name\":\"Alice\",\"city\":\"Berlin\",\"written_by\":\"dir2\"}" } },
	{ "users/bob/profile",
	  { "{\"name\":\"Bob\",\"roles\":[\"admin\"],\"age\":41}",
	    "{\"name\":\"Bob\",\"roles\":[\"viewer\",\"editor\"],\"age\":14}" } },
	{ "config/max_connections", { "100", "250" } },
	{ "config/feature_x", { "true", "false" } },
	{ "greeting", { "\"hello from dir1\"", "\"hello from dir2\"" } },
	{ "inventory/tags", { "[\"red\",\"green\"]", "[\"blue\"]" } },
	{ "settings/theme", { "null", "{\"mode\":\"dark\"}" } },
	/* deleted in DIR1, still a value in DIR2 */
	{ "sessions/old", { NULL, "{\"token\":\"abc123\",\"note\":\"deleted in dir1\"}" } },
};

#define NPATHS (sizeof(paths) / sizeof(paths[0]))

/* --------------------------------------------------------------- internals */

/*
 * Checks that dir is fresh: missing (*missing set) or an empty directory.
 * Creates nothing, so a refused second directory leaves no trace of the
 * first.  Returns 0, or -1 with a message printed.
 */
static int check_fresh(const char *dir, bool *missing)
{
	struct dirent *e;
	struct stat st;
	DIR *d;
	int rc = 0;

	*missing = false;
	if (stat(dir, &st) != 0) {
		if (errno == ENOENT) {
			*missing = true;
			return 0;
		}
		fprintf(stderr, "test_conflict: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	d = opendir(dir);
	if (!d) {
		fprintf(stderr, "test_conflict: %s exists and is not a readable directory: %s\n",
			dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			fprintf(stderr, "test_conflict: %s is not empty (found %s); "
				"refusing to write into an existing data directory\n",
				dir, e->d_name);
			rc = -1;
			break;
		}
	}
	closedir(d);
	return rc;
}

/*
 * Creates dir if check_fresh found it missing.  EEXIST is no error: DIR2
 * may be another spelling of DIR1, which the caller checks next.  Returns 0
 * or -1 (printed).
 */
static int make_dir(const char *dir, bool missing)
{
	if (!missing || mkdir(dir, 0755) == 0 || errno == EEXIST)
		return 0;
	fprintf(stderr, "test_conflict: cannot create %s: %s\n", dir, strerror(errno));
	return -1;
}

/* True if a and b name the same directory (both exist). */
static bool same_dir(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/*
 * Writes every path's version `which` (0: DIR1, 1: DIR2) into dir with the
 * given versions, and joined_timestamp.  Returns 0 or a KVS_E* code with a
 * message printed; the store is closed either way.
 */
static int fill_dir(const char *dir, int which, const struct kvs_version *versions,
		    int64_t joined_ts)
{
	char err[512];
	uint8_t be[8];
	int rc = 0;
	struct store *s = store_open(dir, true, 0, err, sizeof(err));

	if (!s) {
		fprintf(stderr, "test_conflict: %s\n", err);
		return KVS_EIO;
	}
	for (size_t i = 0; i < NPATHS; i++) {
		const char *val = paths[i].value[which];
		struct kvs_record rec = {
			.v = versions[i],
			.tombstone = val == NULL,
			.value = val ? val : "",
			.value_len = val ? strlen(val) : 0,
		};

		/* an empty store takes any remote version: 0 is the only success */
		rc = store_apply(s, paths[i].path, strlen(paths[i].path), &rec, STORE_REMOTE,
				 NULL, NULL);
		if (rc != 0) {
			fprintf(stderr, "test_conflict: writing %s into %s: %s\n", paths[i].path,
				dir, kvs_strerror(rc));
			goto out_close;
		}
	}
	record_put_be64(be, (uint64_t)joined_ts);
	rc = store_meta_put(s, "joined_timestamp", be, sizeof(be));
	if (rc != 0)
		fprintf(stderr, "test_conflict: writing joined_timestamp into %s: %s\n", dir,
			kvs_strerror(rc));
out_close:
	store_close(s);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: test_conflict DIR1 DIR2\n"
		"\n"
		"Writes into two fresh (missing or empty) data directories the same paths with\n"
		"the same timestamps but different UUIDs and values, one path deleted in DIR1\n"
		"and a value in DIR2, and a joined_timestamp making DIR1's node the older\n"
		"member.  Start node1 on DIR1 and node2 (seeded with node1) on DIR2: each\n"
		"path is a 1-1 tie, won by the older member, so DIR1's versions end up on both\n"
		"(README, \"Conflict resolution testing\").\n");
}

/* ------------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	struct kvs_version versions[2][NPATHS];
	const char *dirs[2];
	bool missing[2];
	int64_t now, ts; /* now: when the tool ran; ts: every version's timestamp */

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc != 3) {
		usage(stderr);
		return EXIT_USAGE;
	}
	dirs[0] = argv[1];
	dirs[1] = argv[2];
	log_init(LOG_WARN, LOG_FORMAT_TEXT, "test_conflict");

	for (size_t i = 0; i < NPATHS; i++)
		for (int d = 0; d < 2; d++) {
			const char *val = paths[i].value[d];
			/* the table is ours: a bad literal is a bug, not an input error */
			if (val && !json_valid(val, strlen(val), NULL, NULL)) {
				fprintf(stderr, "test_conflict: BUG: invalid JSON for %s\n",
					paths[i].path);
				return EXIT_FAIL;
			}
		}

	if (check_fresh(dirs[0], &missing[0]) != 0 || check_fresh(dirs[1], &missing[1]) != 0)
		return EXIT_USAGE;
	if (make_dir(dirs[0], missing[0]) != 0)
		return EXIT_USAGE;
	if (make_dir(dirs[1], missing[1]) != 0)
		goto out_remove_dir1;
	if (same_dir(dirs[0], dirs[1])) {
		fprintf(stderr, "test_conflict: DIR1 and DIR2 are the same directory\n");
		goto out_remove_dir1;
	}

	/* One timestamp for every path in both directories; a fresh UUID per
	 * path and directory (version 4, random: never equal in practice). */
	now = version_now_ms();
	ts = now;
	for (size_t i = 0; i < NPATHS; i++) {
		for (int d = 0; d < 2; d++) {
			version_new_local(&versions[d][i], NULL);
			versions[d][i].ts = ts;
		}
		if (version_equal(&versions[0][i], &versions[1][i])) {
			fprintf(stderr, "test_conflict: UUID collision, run again\n");
			return EXIT_FAIL;
		}
	}

	if (fill_dir(dirs[0], 0, versions[0], now - DIR1_JOINED_AGO_MS) != 0 ||
	    fill_dir(dirs[1], 1, versions[1], now - DIR2_JOINED_AGO_MS) != 0)
		return EXIT_FAIL;

	printf("DIR1 %s joined_timestamp=%lld (older member: wins 1-1 ties)\n", dirs[0],
	       (long long)(now - DIR1_JOINED_AGO_MS));
	printf("DIR2 %s joined_timestamp=%lld\n", dirs[1], (long long)(now - DIR2_JOINED_AGO_MS));
	printf("%zu paths, each with timestamp=%lld in both directories:\n", NPATHS,
	       (long long)ts);
	for (size_t i = 0; i < NPATHS; i++) {
		printf("path=%s\n", paths[i].path);
		for (int d = 0; d < 2; d++) {
			char uuid[VERSION_UUID_STR];
			const char *val = paths[i].value[d];

			version_uuid_str(&versions[d][i], uuid);
			printf("  DIR%d uuid=%s timestamp=%lld %s%s\n", d + 1, uuid,
			       (long long)versions[d][i].ts, val ? "value=" : "tombstone (deleted)",
			       val ? val : "");
		}
	}
	return 0;

out_remove_dir1:
	if (missing[0])
		rmdir(dirs[0]); /* leave no trace of a refused run */
	return EXIT_USAGE;
}
