/*
 * fuzz_json.c - libFuzzer target for json.c: json_valid() on arbitrary
 * bytes, cross-checked against cJSON (see tests/fuzz/README.md).
 *
 * json_valid() promises RFC 8259 JSON "that every other parser accepts".
 * So whatever it accepts must also parse with cJSON_ParseWithLength, and
 * cJSON must consume the whole text up to trailing whitespace.  The
 * converse is not checked: cJSON is lenient by design (json.h lists how).
 * A refusal must name a reason and an offset inside the input.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json.h"

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "fuzz_json: check failed: %s (line %d)\n", #cond, \
				__LINE__);                                            \
			abort();                                                      \
		}                                                                     \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why = NULL, *end = NULL;
	size_t offset = (size_t)-1;
	cJSON *doc;

	if (!json_valid((const char *)data, size, &why, &offset)) {
		CHECK(why && *why);
		CHECK(offset <= size);
		return 0;
	}
	doc = cJSON_ParseWithLengthOpts((const char *)data, size, &end, false);
	if (!doc) {
		const char *at = cJSON_GetErrorPtr();
		fprintf(stderr, "fuzz_json: json_valid accepts, cJSON refuses at byte %td\n",
			at ? at - (const char *)data : (ptrdiff_t)-1);
	}
	CHECK(doc != NULL);
	CHECK(end >= (const char *)data && end <= (const char *)data + size);
	for (const char *p = end; p < (const char *)data + size; p++)
		CHECK(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r');
	cJSON_Delete(doc);
	return 0;
}
