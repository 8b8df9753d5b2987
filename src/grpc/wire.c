/*
 * wire.c — just enough of the protobuf wire format to count a repeated field before
 * decoding (so a message that --max-docs will refuse costs its bytes, not a million
 * decoded structs) and to split the embedded descriptor set (reflection.c).
 */
#include "grpc/wing.h"

int rr_wire_varint(const uint8_t *p, size_t n, size_t *pos, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 70 && *pos < n; shift += 7) {
        uint8_t b = p[(*pos)++];
        *v |= (uint64_t)(b & 0x7f) << (shift < 64 ? shift : 63);
        if (!(b & 0x80)) return 1;
    }
    return 0;
}

int rr_wire_count(const uint8_t *p, size_t n, const uint32_t *path, int depth, uint64_t *count)
{
    size_t pos = 0;
    while (pos < n) {
        uint64_t key, len = 0;
        if (!rr_wire_varint(p, n, &pos, &key)) return -1;
        uint64_t field = key >> 3;
        switch (key & 7) {
        case 0: /* varint */
            if (!rr_wire_varint(p, n, &pos, &len)) return -1;
            len = 0;
            break;
        case 1:
            len = 8;
            break;
        case 5:
            len = 4;
            break;
        case 2:
            if (!rr_wire_varint(p, n, &pos, &len)) return -1;
            break;
        default:
            return -1; /* groups (3, 4) and 6, 7: not in our messages */
        }
        if (field == 0 || field > 536870911 || len > n - pos) return -1;
        if (depth > 0 && field == path[0] && (key & 7) == 2) {
            if (depth == 1)
                (*count)++;
            else if (rr_wire_count(p + pos, (size_t)len, path + 1, depth - 1, count) < 0)
                return -1;
        }
        pos += (size_t)len;
    }
    return 0;
}
