/*
 * fuzz_scan.c - libFuzzer target for libkvs's json_scan.c: kc_scan_array,
 * which finds each element of a reply's array and its "value" in the
 * reply's text (see tests/fuzz/README.md).
 *
 * libkvs only scans text cJSON has parsed, but the scanner must stay
 * inside any bytes it is given.  Checked besides "no crash, no sanitizer
 * report": every span found lies inside the input, a value inside its
 * element, elements in order without overlap; and when cJSON parses the
 * input as an object whose "items" is an array of objects, the scanner
 * finds exactly that many elements, each value printing like cJSON's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json_scan.c"

#define MAX_SPANS 64

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "fuzz_scan: check failed: %s (line %d)\n", #cond, \
				__LINE__);                                            \
			abort();                                                      \
		}                                                                     \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* cJSON's compact print of the value at text[off..off+len), parsed alone. */
static char *reprint(const char *text, size_t off, size_t len)
{
	cJSON *v = cJSON_ParseWithLength(text + off, len);
	char *s = v ? cJSON_PrintUnformatted(v) : NULL;

	cJSON_Delete(v);
	return s;
}

/* No control byte but JSON's blanks (tab, newline, return). */
static bool plain_blanks(const char *text, size_t size)
{
	for (size_t i = 0; i < size; i++)
		if ((unsigned char)text[i] < 0x20 && text[i] != '\t' && text[i] != '\n' &&
		    text[i] != '\r')
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kc_span sp[MAX_SPANS];
	char *text = malloc(size + 1);
	cJSON *o;
	int n;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	n = kc_scan_array(text, size, "items", sp, MAX_SPANS);
	CHECK(n >= -1 && n <= MAX_SPANS);
	for (int i = 0; i < n; i++) {
		CHECK(sp[i].off + sp[i].len <= size && sp[i].len >= 2);
		CHECK(text[sp[i].off] == '{' && text[sp[i].off + sp[i].len - 1] == '}');
		CHECK(i == 0 || sp[i].off >= sp[i - 1].off + sp[i - 1].len);
		if (sp[i].val_len)
			CHECK(sp[i].val_off > sp[i].off &&
			      sp[i].val_off + sp[i].val_len < sp[i].off + sp[i].len);
	}
	o = cJSON_ParseWithLength(text, size);
	if (cJSON_IsObject(o)) {
		const cJSON *items = cJSON_GetObjectItemCaseSensitive(o, "items"), *e;
		bool objects = cJSON_IsArray(items) && cJSON_GetArraySize(items) <= MAX_SPANS;
		int i = 0;

		cJSON_ArrayForEach(e, items)
			objects = objects && cJSON_IsObject(e);
		/* duplicate member names: cJSON takes the first, the scanner the
		 * last; and cJSON skips any control byte as blank, JSON only 4 */
		if (objects && !strstr(text, "\\") && cJSON_GetArraySize(o) == 1 &&
		    plain_blanks(text, size)) {
			CHECK(n == cJSON_GetArraySize(items));
			cJSON_ArrayForEach(e, items) {
				const cJSON *v = cJSON_GetObjectItemCaseSensitive(e, "value");
				int members = cJSON_GetArraySize(e);

				if (v && members == 1) {
					char *a = cJSON_PrintUnformatted(v);
					char *b = reprint(text, sp[i].val_off, sp[i].val_len);

					CHECK(a && b && strcmp(a, b) == 0);
					free(a);
					free(b);
				}
				i++;
			}
		}
	}
	cJSON_Delete(o);
	free(text);
	return 0;
}
