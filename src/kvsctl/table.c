/*
 * table.c - kvsctl's `-o table` output: rows of cells printed with every
 * column padded to its widest cell, two spaces apart (kvsctl.h).
 */
#include <stdlib.h>
#include <string.h>

#include "kvsctl.h"

void table_init(struct table *t, int cols, const char *const *header)
{
	t->cols = cols;
	t->rows = 0;
	t->cells = NULL;
	table_row(t, header);
}

void table_row(struct table *t, const char *const *cells)
{
	char **p = realloc(t->cells, sizeof(*p) * (size_t)(t->rows + 1) * (size_t)t->cols);

	if (!p) {
		fprintf(stderr, "kvsctl: out of memory\n");
		exit(EXIT_OTHER);
	}
	t->cells = p;
	for (int i = 0; i < t->cols; i++) {
		p[t->rows * t->cols + i] = strdup(cells[i] ? cells[i] : "");
		if (!p[t->rows * t->cols + i]) {
			fprintf(stderr, "kvsctl: out of memory\n");
			exit(EXIT_OTHER);
		}
	}
	t->rows++;
}

/* Prints and frees the table. */
void table_print(struct table *t, FILE *f)
{
	size_t width[16] = { 0 };

	for (int r = 0; r < t->rows; r++)
		for (int i = 0; i < t->cols && i < 16; i++) {
			size_t n = strlen(t->cells[r * t->cols + i]);

			if (n > width[i])
				width[i] = n;
		}
	for (int r = 0; r < t->rows; r++) {
		for (int i = 0; i < t->cols; i++) {
			const char *cell = t->cells[r * t->cols + i];

			if (i == t->cols - 1)
				fprintf(f, "%s\n", cell);
			else
				fprintf(f, "%-*s  ", (int)width[i < 16 ? i : 15], cell);
			free(t->cells[r * t->cols + i]);
		}
	}
	free(t->cells);
	t->cells = NULL;
	t->rows = 0;
	fflush(f);
}
