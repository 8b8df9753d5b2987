/*
 * golden_jsonl.h — reading the golden JSONL fixtures of tests/golden/ (one JSON object a
 * line, ASCII, written by make_golden.py) in the tokenizer tests: the whole file, integer
 * arrays, and string values with their U+0000s intact (test_tok_golden.c, test_tok_offsets.c;
 * static functions, one copy per test).
 */
#ifndef RR_TEST_GOLDEN_JSONL_H
#define RR_TEST_GOLDEN_JSONL_H

#include <cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The whole file, NUL-terminated, in a malloc'ed buffer (*len bytes before the NUL); NULL if
 * it cannot be read. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        *len = (size_t)n;
    }
    return buf;
}

/* Reads a JSON array of integers into out (capacity cap); returns the count or -1. */
static int json_ids(const cJSON *arr, int32_t *out, int cap)
{
    int n = 0;
    const cJSON *e;
    if (!cJSON_IsArray(arr)) return -1;
    cJSON_ArrayForEach(e, arr)
    {
        if (n >= cap) return -1;
        out[n++] = (int32_t)e->valuedouble;
    }
    return n;
}

/* The string value of "key" in one JSON line, decoded into buf (NUL bytes included, which a
 * cJSON valuestring cannot carry: the fixtures contain U+0000). Returns its byte length, or
 * -1. Handles every JSON escape, surrogate pairs included (json.dumps writes ASCII only). */
static long json_string(const char *line, const char *key, char *buf, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p) return -1;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    if (*p++ != '"') return -1;
    size_t n = 0;
    while (*p && *p != '"') {
        uint32_t c = (unsigned char)*p++;
        if (c == '\\') {
            char e = *p++;
            switch (e) {
            case 'b':
                c = 8;
                break;
            case 'f':
                c = 12;
                break;
            case 'n':
                c = 10;
                break;
            case 'r':
                c = 13;
                break;
            case 't':
                c = 9;
                break;
            case 'u':
                c = (uint32_t)strtoul((char[5]){p[0], p[1], p[2], p[3], 0}, NULL, 16);
                p += 4;
                if (c >= 0xD800 && c < 0xDC00 && p[0] == '\\' && p[1] == 'u') {
                    uint32_t lo = (uint32_t)strtoul((char[5]){p[2], p[3], p[4], p[5], 0}, NULL, 16);
                    c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
                break;
            default:
                c = (unsigned char)e;
                break;
            }
            if (n + 4 > cap) return -1;
            if (c < 0x80) {
                buf[n++] = (char)c;
            } else if (c < 0x800) {
                buf[n++] = (char)(0xC0 | (c >> 6));
                buf[n++] = (char)(0x80 | (c & 0x3F));
            } else if (c < 0x10000) {
                buf[n++] = (char)(0xE0 | (c >> 12));
                buf[n++] = (char)(0x80 | ((c >> 6) & 0x3F));
                buf[n++] = (char)(0x80 | (c & 0x3F));
            } else {
                buf[n++] = (char)(0xF0 | (c >> 18));
                buf[n++] = (char)(0x80 | ((c >> 12) & 0x3F));
                buf[n++] = (char)(0x80 | ((c >> 6) & 0x3F));
                buf[n++] = (char)(0x80 | (c & 0x3F));
            }
        } else {
            if (n + 1 > cap) return -1;
            buf[n++] = (char)c;
        }
    }
    return *p == '"' ? (long)n : -1;
}

#endif /* RR_TEST_GOLDEN_JSONL_H */
