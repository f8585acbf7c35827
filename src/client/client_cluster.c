/*
 * client_cluster.c - libkvs cluster calls: GET /members/, GET /health,
 * one sample of /metrics, and GET /admin/snapshot streamed to a file
 * (README: Cluster API, Metrics; SPEC section 11).
 *
 * Threads: as the client (one thread at a time per client).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "client_int.h"

/* GETs path (from address, or the endpoints) and checks the status. */
static int get_json(kvs_client *c, const char *address, const char *path, struct kc_reply *rep,
		    cJSON **out)
{
	struct kc_req req = { .method = "GET", .path = path, .address = address };
	int rc;

	if ((rc = kc_send(c, &req, rep)) != 0)
		return rc;
	if ((rc = kc_status(c, rep)) != 0)
		return rc;
	if (out && !(*out = cJSON_ParseWithLength(rep->body.data ? rep->body.data : "",
						  rep->body.len))) {
		kc_seterr(c, "%s: reply is not JSON", path);
		return KVS_EPROTO;
	}
	return 0;
}

/* Hands the reply's body over to *raw (when raw is not NULL). */
static int take_raw(struct kc_reply *rep, char **raw)
{
	if (!raw)
		return 0;
	*raw = rep->body.data ? rep->body.data : strdup("");
	rep->body.data = NULL;
	return *raw ? 0 : KVS_ENOMEM;
}

static char *str_dup_member(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return strdup(cJSON_IsString(v) ? v->valuestring : "");
}

int kvs_members(kvs_client *c, struct kvs_member **out, char **raw)
{
	struct kc_reply rep;
	struct kvs_member *m = NULL;
	cJSON *arr = NULL;
	const cJSON *e;
	int n = 0, rc;

	if (!c || !out)
		return KVS_EINVAL;
	if ((rc = get_json(c, NULL, "/members/", &rep, &arr)) != 0)
		goto out;
	if (!cJSON_IsArray(arr)) {
		rc = KVS_EPROTO;
		goto out;
	}
	if (!(m = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*m)))) {
		rc = KVS_ENOMEM;
		goto out;
	}
	cJSON_ArrayForEach(e, arr) {
		const cJSON *ls = cJSON_GetObjectItemCaseSensitive(e, "last_seen");
		const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "clock_offset_ms");
		struct kvs_member *x = &m[n++];

		x->id = str_dup_member(e, "id");
		x->address = str_dup_member(e, "address");
		x->status = str_dup_member(e, "status");
		x->last_seen = cJSON_IsNumber(ls) ? (int64_t)ls->valuedouble : 0;
		x->has_clock_offset = cJSON_IsNumber(off);
		x->clock_offset_ms = x->has_clock_offset ? (int64_t)off->valuedouble : 0;
		if (!x->id || !x->address || !x->status) {
			rc = KVS_ENOMEM;
			goto out;
		}
	}
	if ((rc = take_raw(&rep, raw)) != 0)
		goto out;
	*out = m;
	m = NULL;
	rc = n;
out:
	kvs_members_free(m, n);
	cJSON_Delete(arr);
	kc_reply_release(&rep);
	return rc;
}

void kvs_members_free(struct kvs_member *m, int n)
{
	if (!m)
		return;
	for (int i = 0; i < n; i++) {
		free(m[i].id);
		free(m[i].address);
		free(m[i].status);
	}
	free(m);
}

static void copy_member(const cJSON *o, const char *name, char *dst, size_t n)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	snprintf(dst, n, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

int kvs_health(kvs_client *c, const char *address, struct kvs_health *out, char **raw)
{
	struct kc_reply rep;
	cJSON *o = NULL;
	const cJSON *mc;
	int rc;

	if (!c || !out)
		return KVS_EINVAL;
	if ((rc = get_json(c, address, "/health", &rep, &o)) != 0)
		goto out;
	if (!cJSON_IsObject(o)) {
		rc = KVS_EPROTO;
		goto out;
	}
	if ((rc = take_raw(&rep, raw)) != 0)
		goto out;
	memset(out, 0, sizeof(*out));
	copy_member(o, "status", out->status, sizeof(out->status));
	copy_member(o, "mode", out->mode, sizeof(out->mode));
	copy_member(o, "clock", out->clock, sizeof(out->clock));
	copy_member(o, "node_id", out->node_id, sizeof(out->node_id));
	mc = cJSON_GetObjectItemCaseSensitive(o, "member_count");
	out->member_count = cJSON_IsNumber(mc) ? mc->valueint : 0;
out:
	cJSON_Delete(o);
	kc_reply_release(&rep);
	return rc;
}

int kvs_metric(kvs_client *c, const char *address, const char *name, double *value)
{
	struct kc_reply rep;
	size_t n;
	int rc;

	if (!c || !name || !value || !*name)
		return KVS_EINVAL;
	if ((rc = get_json(c, address, "/metrics", &rep, NULL)) != 0)
		goto out;
	n = strlen(name);
	rc = KVS_ENOTFOUND;
	for (const char *p = rep.body.data; p && *p;) {
		const char *eol = strchr(p, '\n');

		if (strncmp(p, name, n) == 0 && p[n] == ' ') {
			*value = strtod(p + n + 1, NULL);
			rc = 0;
			break;
		}
		p = eol ? eol + 1 : NULL;
	}
	if (rc == KVS_ENOTFOUND)
		kc_seterr(c, "no sample %s in /metrics", name);
out:
	kc_reply_release(&rep);
	return rc;
}

int64_t kvs_snapshot_save(kvs_client *c, const char *path)
{
	struct kc_req req = { .method = "GET", .path = "/admin/snapshot", .timeout_ms = 3600000 };
	struct kc_reply rep;
	char part[4096];
	FILE *f;
	int rc;

	if (!c || !path || !*path)
		return KVS_EINVAL;
	if ((size_t)snprintf(part, sizeof(part), "%s.part", path) >= sizeof(part))
		return KVS_EINVAL;
	if (!(f = fopen(part, "wb"))) {
		kc_seterr(c, "%s: cannot create", part);
		return KVS_EIO;
	}
	req.sink = f;
	rc = kc_send(c, &req, &rep);
	if (!rc)
		rc = kc_status(c, &rep);
	if (fclose(f) != 0 && !rc) {
		kc_seterr(c, "%s: write failed", part);
		rc = KVS_EIO;
	}
	if (!rc && rename(part, path) != 0) {
		kc_seterr(c, "%s: cannot rename into place", path);
		rc = KVS_EIO;
	}
	if (rc) {
		unlink(part);
		kc_reply_release(&rep);
		return rc;
	}
	kc_reply_release(&rep);
	return rep.sink_bytes;
}
