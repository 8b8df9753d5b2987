# proto_c_variant.cmake — writes the copy of a .proto that protoc-c 1.4.1 compiles, with
# the same wire format as the original:
#  - proto3 `optional T name = N;` (which protoc-c refuses) becomes `oneof _name { T name = N; }`,
#    the synthetic oneof protoc itself uses for them, so presence tracking is unchanged;
#  - every `string` field becomes `bytes` (the same wire type, 2): protoc-c gives a string
#    as a NUL-terminated char*, which loses its length, so "a\0b" would reach the tokenizer
#    as "a"; a bytes field is {len, data}. The front checks UTF-8 itself.
# The original file is what the descriptor set (reflection) and Python stubs use.
# Usage: cmake -DIN=a.proto -DOUT=b.proto -P proto_c_variant.cmake
file(READ "${IN}" text)
string(REGEX REPLACE "optional[ \t]+([A-Za-z0-9_.]+)[ \t]+([A-Za-z0-9_]+)[ \t]*=[ \t]*([0-9]+)[ \t]*;"
       "oneof _\\2 { \\1 \\2 = \\3; }" text "${text}")
string(REGEX REPLACE "([ \t{])string([ \t]+[A-Za-z0-9_]+[ \t]*=[ \t]*[0-9]+[ \t]*;)"
       "\\1bytes\\2" text "${text}")
file(WRITE "${OUT}" "${text}")
