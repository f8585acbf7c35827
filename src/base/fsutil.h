/*
 * fsutil.h - small file-system helpers: create a directory with its
 * parents, remove a directory tree, and tell whether a directory is empty.
 * Used at start-up (data_dir) and by the restore (kvs --restore), which
 * builds a data dir beside the real one and removes it on failure.
 *
 * Threads: any; they touch only the paths given.
 */
#ifndef KVS_FSUTIL_H
#define KVS_FSUTIL_H

#include <stdbool.h>

/* mkdir -p: creates dir (mode 0755) and its missing parents.  Returns 0 or
 * a negative errno. */
int fs_mkdir_p(const char *dir);

/* rm -rf of dir: removes it and everything under it, without following
 * symbolic links.  A missing dir is no error.  Returns 0 or a negative
 * errno (what could be removed is gone). */
int fs_rmtree(const char *dir);

/* Whether dir is a directory with no entry but "." and "..".  Returns 1
 * (empty), 0 (not empty), or a negative errno (-ENOENT: absent, -ENOTDIR:
 * not a directory). */
int fs_dir_empty(const char *dir);

#endif
