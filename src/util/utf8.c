/*
 * utf8.c — strict UTF-8 validation and code point counting. The tokenizer rejects invalid
 * UTF-8 (Python strings, what HF tokenizes, cannot hold it: spec §2.8) and the request front
 * checks every string it echoes; both use this one validator.
 */
#include <stdint.h>
#include <string.h>

#include "util/util.h"

size_t rr_utf8_check(const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < n) {
        /* ASCII runs, eight bytes at a time: the common case for English prose */
        while (i + 8 <= n) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            if (v & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= n) break;
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        /* lead byte: C2..DF two bytes, E0..EF three, F0..F4 four (C0, C1, F5.. never occur) */
        int k = c >= 0xF5 ? -1 : c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 ? 1 : -1;
        if (k < 0 || n - i <= (size_t)k) return i;
        uint32_t cp = c & (0x3Fu >> k);
        for (int j = 1; j <= k; j++) {
            if ((s[i + (size_t)j] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + (size_t)j] & 0x3Fu);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return i;
        i += (size_t)k + 1;
    }
    return n;
}

size_t rr_utf8_chars(const char *text, size_t n)
{
    size_t chars = 0;
    for (size_t i = 0; i < n; i++)
        chars += ((unsigned char)text[i] & 0xC0) != 0x80;
    return chars;
}
