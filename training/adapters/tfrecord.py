"""TFRecord files of tf.train.Example / SequenceExample, read without TensorFlow (YouTube-8M ships these).

A TFRecord file is a run of records: uint64 length, uint32 masked CRC-32C of those 8 bytes, the payload, uint32
masked CRC-32C of the payload, little-endian (tensorflow/core/lib/io/record_writer.cc). Both checksums are
verified (google-crc32c computes CRC-32C in C, at GB/s): a file that is not a TFRecord, or a corrupted or truncated
one, is an error naming the byte, not a silently wrong label.

The protobuf messages (tensorflow/core/example/{example,feature}.proto): Example = {1: Features}; SequenceExample =
{1: Features context, 2: FeatureLists}; Features = {1: map<string, Feature>}, each map entry {1: key, 2: value};
Feature = oneof {1: BytesList, 2: FloatList, 3: Int64List}, each {1: repeated value}, numbers packed or not. Only
field 1 (an Example's features, a SequenceExample's context) is decoded, and in it only the keys asked for: the
frame features are skipped unread.
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Iterator
from pathlib import Path

import google_crc32c

from .manifest import AnnotationError


def crc32c(data: bytes) -> int:
    return google_crc32c.value(data)


def masked_crc32c(data: bytes) -> int:
    """TFRecord's checksum: CRC-32C rotated right by 15 bits plus a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(path: str | Path) -> Iterator[bytes]:
    """The payloads of a TFRecord file, in order."""
    with open(path, "rb") as file:
        offset = 0
        while header := file.read(12):
            if len(header) < 12:
                raise AnnotationError(f"TFRecord {path}: truncated record header at byte {offset}.")
            if masked_crc32c(header[:8]) != int.from_bytes(header[8:], "little"):
                raise AnnotationError(
                    f"TFRecord {path}: bad length checksum at byte {offset}: not a TFRecord file, or a corrupted one."
                )
            length = int.from_bytes(header[:8], "little")
            payload = file.read(length)
            checksum = file.read(4)
            if len(payload) < length or len(checksum) < 4:
                raise AnnotationError(f"TFRecord {path}: the record at byte {offset} is truncated.")
            if masked_crc32c(payload) != int.from_bytes(checksum, "little"):
                raise AnnotationError(f"TFRecord {path}: bad payload checksum in the record at byte {offset}.")
            yield payload
            offset += 16 + length


def _varint(buffer: memoryview, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(buffer):
            raise AnnotationError("Truncated protobuf varint.")
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def _fields(buffer: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) of a message: an int for a varint, the bytes (a view) otherwise."""
    position = 0
    while position < len(buffer):
        key, position = _varint(buffer, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(buffer, position)
            yield number, wire_type, value
            continue
        if wire_type == 2:
            size, position = _varint(buffer, position)
        elif wire_type in (1, 5):  # fixed64, fixed32
            size = 8 if wire_type == 1 else 4
        else:
            raise AnnotationError(f"Unsupported protobuf wire type {wire_type} (field {number}).")
        if position + size > len(buffer):
            raise AnnotationError(f"Truncated protobuf field {number}.")
        yield number, wire_type, buffer[position : position + size]
        position += size


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _feature_values(feature: memoryview) -> list[bytes] | list[float] | list[int]:
    """The values of a Feature: bytes, floats or ints, by which list it holds."""
    values: list = []
    for kind, _, values_list in _fields(feature):
        for _, wire_type, value in _fields(values_list):
            if kind == 1:  # BytesList
                values.append(bytes(value))
            elif kind == 2:  # FloatList: packed floats (wire type 2) or one fixed32
                values.extend(struct.unpack(f"<{len(value) // 4}f", value))
            elif kind == 3 and wire_type == 2:  # Int64List, packed varints
                position = 0
                while position < len(value):
                    number, position = _varint(value, position)
                    values.append(_int64(number))
            elif kind == 3:
                values.append(_int64(value))
    return values


def parse_features(record: bytes, keys: Collection[str]) -> dict[str, list]:
    """`{key: values}` for the `keys` present in an Example's features or a SequenceExample's context."""
    found = {}
    for number, _, features in _fields(memoryview(record)):
        if number != 1:  # a SequenceExample's feature_lists
            continue
        for _, _, entry in _fields(features):
            key = value = None
            for field_number, _, content in _fields(entry):
                if field_number == 1:
                    key = bytes(content).decode("utf-8")
                elif field_number == 2:
                    value = content
            if key in keys and value is not None:
                found[key] = _feature_values(value)
    return found
