/*
 * vote.c - the tally of a conflict vote (rule in vote.h).
 *
 * Quadratic in the number of voters, which is the number of live members
 * (tens): each version is counted once, at its first holder.  Pure, no
 * locks: any thread.
 */
#include "vote.h"

#include <string.h>

/* True if a's holder ranks before b's: earlier joined_ts, then smaller id. */
static bool holder_before(const struct vote *a, const struct vote *b)
{
	if (a->joined_ts != b->joined_ts)
		return a->joined_ts < b->joined_ts;
	return strcmp(a->id, b->id) < 0;
}

int vote_tally(const struct vote *votes, size_t n)
{
	int64_t newest = -1;
	int best = -1, best_votes = 0, best_holder = -1;

	for (size_t i = 0; i < n; i++)
		if (votes[i].has && votes[i].v.ts > newest)
			newest = votes[i].v.ts;
	if (newest < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!votes[i].has || votes[i].v.ts != newest)
			continue;
		/* count this version once, at its first holder */
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = votes[j].has && version_equal(&votes[j].v, &votes[i].v);
		if (seen)
			continue;
		int count = 0, holder = (int)i;
		for (size_t j = i; j < n; j++) {
			if (votes[j].has && version_equal(&votes[j].v, &votes[i].v)) {
				count++;
				if (holder_before(&votes[j], &votes[holder]))
					holder = (int)j;
			}
		}
		if (best < 0 || count > best_votes ||
		    (count == best_votes && holder_before(&votes[holder], &votes[best_holder]))) {
			best = (int)i;
			best_votes = count;
			best_holder = holder;
		}
	}
	return best;
}
