// onigsplit prints where a pattern splits texts, using Oniguruma the way
// Hugging Face tokenizers does (onig crate defaults: Ruby syntax, no
// options, UTF-8; find_iter searches again from the end of each match).
//
// Usage: onigsplit PATTERN_FILE < texts > splits
// Input: records of a 4-byte little-endian length and that many bytes.
// Output: one line per record, "start-end" for each match, space-separated.
#include <oniguruma.h>
#include <stdio.h>
#include <stdlib.h>

static unsigned char *read_all(FILE *f, size_t *n) {
	size_t cap = 1 << 16, len = 0;
	unsigned char *buf = malloc(cap);
	size_t k;
	while ((k = fread(buf + len, 1, cap - len, f)) > 0) {
		len += k;
		if (len == cap) buf = realloc(buf, cap *= 2);
	}
	*n = len;
	return buf;
}

int main(int argc, char **argv) {
	if (argc != 2) { fprintf(stderr, "usage: onigsplit PATTERN_FILE\n"); return 2; }
	FILE *pf = fopen(argv[1], "rb");
	if (!pf) { perror(argv[1]); return 2; }
	size_t plen;
	unsigned char *pat = read_all(pf, &plen);
	OnigEncoding enc = ONIG_ENCODING_UTF8;
	onig_initialize(&enc, 1);
	regex_t *reg;
	OnigErrorInfo einfo;
	int r = onig_new(&reg, pat, pat + plen, ONIG_OPTION_NONE, ONIG_ENCODING_UTF8, ONIG_SYNTAX_RUBY, &einfo);
	if (r != ONIG_NORMAL) { fprintf(stderr, "onig_new failed: %d\n", r); return 1; }
	OnigRegion *region = onig_region_new();
	size_t n;
	unsigned char *in = read_all(stdin, &n);
	size_t pos = 0;
	while (pos + 4 <= n) {
		size_t len = in[pos] | in[pos+1] << 8 | in[pos+2] << 16 | (size_t)in[pos+3] << 24;
		unsigned char *s = in + pos + 4, *end = s + len;
		pos += 4 + len;
		size_t start = 0;
		int first = 1;
		while (start < len) {
			r = onig_search(reg, s, end, s + start, end, region, ONIG_OPTION_NONE);
			if (r < 0) break;
			int b = region->beg[0], e = region->end[0];
			if (e == b) { start++; continue; } // the patterns here never match empty
			printf(first ? "%d-%d" : " %d-%d", b, e);
			first = 0;
			start = e;
		}
		printf("\n");
	}
	return 0;
}
