# proto_c_variant.cmake — writes a copy of a .proto for protoc-c 1.4.1, which refuses proto3
# `optional` fields: each `optional T name = N;` becomes `oneof _name { T name = N; }`, the
# synthetic oneof protoc itself uses for them, so the wire format and presence tracking are
# unchanged. The original file is what the descriptor set (reflection) and Python stubs use.
# Usage: cmake -DIN=a.proto -DOUT=b.proto -P proto_c_variant.cmake
file(READ "${IN}" text)
string(REGEX REPLACE "optional[ \t]+([A-Za-z0-9_.]+)[ \t]+([A-Za-z0-9_]+)[ \t]*=[ \t]*([0-9]+)[ \t]*;"
       "oneof _\\2 { \\1 \\2 = \\3; }" text "${text}")
file(WRITE "${OUT}" "${text}")
