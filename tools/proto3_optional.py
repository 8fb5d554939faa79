"""Restores proto3 `optional` in descriptors whose .proto spells it for protoc-c.

protoc-c (1.4) cannot compile proto3 `optional`, so Protos/ writes each such field as a
one-member oneof named `_<field>`: the same wire format and the same presence. Server
reflection must describe the official API, though, so before the descriptors are
serialized for reflection each of those oneofs becomes what protoc makes of `optional`:
the field gets `proto3_optional`, its oneof stays as the synthetic one, and synthetic
oneofs follow every real one (protoc's rule for their order)."""

from google.protobuf import descriptor_pb2


def _is_spelled_optional(message, field):
    if not field.HasField("oneof_index") or field.proto3_optional:
        return False
    members = [f for f in message.field if f.HasField("oneof_index") and f.oneof_index == field.oneof_index]
    return len(members) == 1 and message.oneof_decl[field.oneof_index].name == "_" + field.name


def _restore_in_message(message):
    for nested in message.nested_type:
        _restore_in_message(nested)
    synthetic = set()
    for field in message.field:
        if _is_spelled_optional(message, field):
            field.proto3_optional = True
            synthetic.add(field.oneof_index)
        elif field.proto3_optional:
            synthetic.add(field.oneof_index)
    if not synthetic:
        return
    real = [i for i in range(len(message.oneof_decl)) if i not in synthetic]
    # Synthetic oneofs in the order of their fields, as protoc emits them.
    ordered_synthetic = [f.oneof_index for f in message.field if f.HasField("oneof_index") and f.oneof_index in synthetic]
    order = real + ordered_synthetic
    new_index = {old: new for new, old in enumerate(order)}
    decls = [descriptor_pb2.OneofDescriptorProto() for _ in order]
    for old, new in new_index.items():
        decls[new].CopyFrom(message.oneof_decl[old])
    del message.oneof_decl[:]
    message.oneof_decl.extend(decls)
    for field in message.field:
        if field.HasField("oneof_index"):
            field.oneof_index = new_index[field.oneof_index]


def restore_proto3_optional(file):
    """Rewrites `file` (a FileDescriptorProto) in place; proto2 files are left alone."""
    if file.syntax != "proto3":
        return file
    for message in file.message_type:
        _restore_in_message(message)
    return file
