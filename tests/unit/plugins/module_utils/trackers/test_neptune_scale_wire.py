"""The protobuf wire decoding of neptune-scale's stored operations (trackers/neptune_scale.py)."""

import struct
from decimal import Decimal

import pytest

from ansible_collections.mlops.migration.plugins.module_utils.trackers import neptune_scale as wire


def _varint(number):
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _field(number, wire_type, payload):
    if wire_type == 0:
        return _varint(number << 3) + _varint(payload)
    if wire_type == 2:
        return _varint(number << 3 | 2) + _varint(len(payload)) + payload
    return _varint(number << 3 | wire_type) + payload


def test_a_step_is_exact_and_a_negative_int64_is_signed():
    assert wire.step(_field(1, 0, 2) + _field(2, 0, 500_000)) == Decimal("2.5")
    assert wire.value(_field(3, 0, (1 << 64) - 5)) == ("int", -5)
    assert wire.value(_field(1, 1, struct.pack("<d", 0.25))) == ("float", 0.25)


def test_packed_and_unpacked_repeated_fields_both_read():
    packed = _field(1, 2, struct.pack("<3d", 0.0, 1.0, 2.0)) + _field(4, 2, _field(1, 2, _varint(3) + _varint(4)))
    assert wire.value(_field(14, 2, packed))[1] == {"type": "COUNTING", "edges": [0.0, 1.0, 2.0], "values": [3, 4]}
    unpacked = _field(1, 1, struct.pack("<d", 0.5)) + _field(1, 1, struct.pack("<d", 1.5))
    assert wire.value(_field(14, 2, unpacked))[1]["edges"] == [0.5, 1.5]


def test_an_update_with_a_set_change_and_an_append():
    change = _field(1, 2, _field(1, 2, _field(1, 2, b"tag") + _field(2, 0, wire.SET_REMOVE)))
    update = (_field(1, 2, _field(1, 0, 7)) + _field(2, 2, _field(1, 0, 1_700_000_000) + _field(2, 0, 600_000_000))
              + _field(5, 2, _field(1, 2, b"sys/tags") + _field(2, 2, change))
              + _field(8, 2, _field(1, 2, b"train/log") + _field(2, 2, _field(6, 2, b"hello"))))
    decoded = wire.update(update)
    assert (decoded["step"], decoded["timestamp"]) == (Decimal(7), 1_700_000_000_600)
    assert decoded["sets"] == [("sys/tags", [("tag", wire.SET_REMOVE)])]
    assert decoded["append"] == [("train/log", ("string", "hello"))]


@pytest.mark.parametrize("damaged", [b"\x0a\xff\xff", b"\x08", b"\x0f\x01", b"\x12\x05ab"])
def test_damaged_bytes_are_refused(damaged):
    with pytest.raises(wire.WireError):
        list(wire.fields(damaged))
