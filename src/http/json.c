/*
 * json.c — the HTTP wing's JSON text helpers: writing a string literal from bytes with a
 * length (a U+0000 inside a text is escaped, never an end), and one pass over a request
 * body that measures it before it is parsed, so a body of a million empty strings is
 * refused for its size (413) instead of first becoming a million parsed values.
 */
#include <stdio.h>
#include <string.h>

#include "http/wing.h"
#include "util/strbuf.h"
#include "util/util.h"

void rr_json_put_string(rr_strbuf *o, const char *s, size_t n)
{
    rr_strbuf_printf(o, "\"");
    size_t i = 0;
    while (i < n && !o->oom) {
        size_t run = i; /* a run of bytes that need no escape */
        while (run < n && (unsigned char)s[run] >= 0x20 && s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i) {
            /* A control character, quote or backslash cannot sit inside a multi-byte
             * sequence, so a run ends on a character boundary of valid UTF-8. */
            size_t len = run - i, ok = rr_utf8_check(s + i, len);
            rr_strbuf_printf(o, "%.*s", (int)ok, s + i);
            i += ok;
            if (ok < len) { /* an invalid byte: U+FFFD, then go on after it */
                rr_strbuf_printf(o, "\\ufffd");
                i++;
            }
            continue;
        }
        unsigned char c = (unsigned char)s[i++];
        switch (c) {
        case '"':
            rr_strbuf_printf(o, "\\\"");
            break;
        case '\\':
            rr_strbuf_printf(o, "\\\\");
            break;
        case '\n':
            rr_strbuf_printf(o, "\\n");
            break;
        case '\r':
            rr_strbuf_printf(o, "\\r");
            break;
        case '\t':
            rr_strbuf_printf(o, "\\t");
            break;
        default:
            rr_strbuf_printf(o, "\\u%04x", c);
            break;
        }
    }
    rr_strbuf_printf(o, "\"");
}

#define SCAN_LEVELS 64

void rr_json_scan(const char *body, size_t n, rr_json_shape *s)
{
    struct {
        char obj, want_key;
        uint64_t n;
        char key[32]; /* for an array member of the top-level object: its key */
    } lv[SCAN_LEVELS + 1];
    memset(s, 0, sizeof *s);
    int d = 0, in_str = 0, esc = 0, in_scalar = 0, key_at = -1; /* key_at: level of a key */
    size_t key_len = 0;
    char key[32] = "";
    lv[0].obj = 0;
    lv[0].n = 0;
    for (size_t i = 0; i < n; i++) {
        char c = body[i];
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0, key_at = -1;
            else if (key_at == 1 && key_len + 1 < sizeof key)
                key[key_len++] = c, key[key_len] = 0;
            continue;
        }
        int value = 0;
        switch (c) {
        case '"':
            in_str = 1;
            in_scalar = 0;
            if (d > 0 && d <= SCAN_LEVELS && lv[d].obj && lv[d].want_key) {
                lv[d].want_key = 0;
                key_at = d;
                if (d == 1) key_len = 0, key[0] = 0;
            } else {
                value = 1;
            }
            break;
        case '{':
        case '[':
            in_scalar = 0;
            s->values++;
            if (d <= SCAN_LEVELS && !lv[d].obj) lv[d].n++;
            d++;
            if (d > s->depth) s->depth = d;
            if (d <= SCAN_LEVELS) {
                lv[d].obj = c == '{';
                lv[d].want_key = c == '{';
                lv[d].n = 0;
                snprintf(lv[d].key, sizeof lv[d].key, "%s", d == 2 && lv[1].obj ? key : "");
            }
            break;
        case '}':
        case ']':
            in_scalar = 0;
            if (d > 0) {
                if (d == 2 && d <= SCAN_LEVELS && !lv[d].obj && lv[1].obj &&
                    lv[d].n > s->top_array) {
                    s->top_array = lv[d].n;
                    memcpy(s->top_key, lv[d].key, sizeof s->top_key);
                }
                d--;
            }
            break;
        case ',':
            in_scalar = 0;
            if (d > 0 && d <= SCAN_LEVELS && lv[d].obj) lv[d].want_key = 1;
            break;
        case ':':
        case ' ':
        case '\t':
        case '\n':
        case '\r':
            in_scalar = 0;
            break;
        default: /* numbers, true, false, null (or garbage: the parser refuses it later) */
            if (!in_scalar) value = 1;
            in_scalar = 1;
            break;
        }
        if (value) {
            s->values++;
            if (d <= SCAN_LEVELS && !lv[d].obj) lv[d].n++;
        }
    }
}
