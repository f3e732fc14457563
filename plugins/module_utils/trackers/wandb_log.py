# -*- coding: utf-8 -*-
# Copyright: mlops.migration contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record log of a W&B offline run (``wandb/offline-run-<time>-<id>/run-<id>.wandb``), framing only.

The file starts with a 7-byte header: ``:W&B``, the magic 0xBEE1 (little-endian) and a version byte
(0). Then come 32 KiB blocks of chunks. A chunk is a 7-byte header - crc32 (4 bytes), data length
(2 bytes), type (1 byte), little-endian - and its data. A record that fits the room left in its block
is one FULL chunk (type 1); a longer one is split into FIRST (2), MIDDLE (3) ... LAST (4) chunks over
the following blocks. Less than 7 bytes left in a block are padding. The crc32 is zlib's, of the data,
seeded with the crc32 of the type byte. Each record is one protobuf ``wandb_internal_pb2.Record``
(decoded by the caller, which needs the ``wandb`` package).

``records`` checks every chunk's crc32 and reassembles split records; a corrupt chunk, a chunk that
breaks the FIRST..LAST order, or a file that ends inside a chunk or a split record raises
WandbLogError naming the offset - after yielding every whole record before it, so a caller can tell
what was read from what was lost, and never takes a cut-off run for a finished one. Importable
without Ansible.
"""

from __future__ import annotations

import struct
import zlib

from ansible_collections.mlops.migration.plugins.module_utils.common import MigrationError

MAGIC = b":W&B"
MAGIC_NUMBER = 0xBEE1
HEADER = struct.Struct("<4sHB")
CHUNK = struct.Struct("<IHB")
BLOCK = 32 * 1024
ZERO, FULL, FIRST, MIDDLE, LAST = range(5)
TYPE_CRC = [zlib.crc32(bytes([kind])) for kind in range(5)]


class WandbLogError(MigrationError):
    """A .wandb file that is not a record log, or is corrupt or cut off at ``offset``."""

    def __init__(self, msg, offset=None):
        super().__init__(msg)
        self.offset = offset


def chunk_crc(kind, data):
    return zlib.crc32(data, TYPE_CRC[kind]) & 0xFFFFFFFF


def records(stream, where="the .wandb file"):
    """``(offset, record bytes)`` of every record of an open binary ``stream``, in order."""
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        raise WandbLogError(f"{where} is not a W&B record log: {len(head)} bytes, shorter than the header", 0)
    ident, magic, version = HEADER.unpack(head)
    if ident != MAGIC or magic != MAGIC_NUMBER:
        raise WandbLogError(f"{where} is not a W&B record log (header {head!r})", 0)
    if version != 0:
        raise WandbLogError(f"{where} is a W&B record log of version {version}; version 0 is understood", 6)
    offset, parts, start = HEADER.size, None, None
    while True:
        room = BLOCK - offset % BLOCK
        if room < CHUNK.size:
            if len(stream.read(room)) < room:
                break  # a file may end in a block's padding
            offset += room
            continue
        raw = stream.read(CHUNK.size)
        if not raw:
            break
        if len(raw) < CHUNK.size:
            raise WandbLogError(f"{where} is cut off at offset {offset}, inside a chunk header", offset)
        crc, length, kind = CHUNK.unpack(raw)
        if kind == ZERO and length == 0 and crc == 0:  # the rest of the block is padding
            rest = room - CHUNK.size
            if len(stream.read(rest)) < rest:
                break
            offset += room
            continue
        if kind > LAST or length > room - CHUNK.size:
            raise WandbLogError(f"{where} is corrupt at offset {offset}: a chunk of type {kind} and length {length} "
                                f"in a block with {room - CHUNK.size} bytes left", offset)
        data = stream.read(length)
        if len(data) < length:
            raise WandbLogError(f"{where} is cut off at offset {offset}: a chunk of {length} bytes has {len(data)}",
                                offset)
        if chunk_crc(kind, data) != crc:
            raise WandbLogError(f"{where} is corrupt at offset {offset}: the chunk's crc32 does not match its data",
                                offset)
        if kind == FULL or kind == FIRST:
            if parts is not None:
                raise WandbLogError(f"{where} is corrupt at offset {offset}: a record starts inside the record "
                                    f"begun at offset {start}", offset)
            if kind == FULL:
                yield offset, data
            else:
                parts, start = [data], offset
        else:
            if parts is None:
                raise WandbLogError(f"{where} is corrupt at offset {offset}: a record's continuation without its "
                                    "beginning", offset)
            parts.append(data)
            if kind == LAST:
                yield start, b"".join(parts)
                parts, start = None, None
        offset += CHUNK.size + length
    if parts is not None:
        raise WandbLogError(f"{where} is cut off: the record begun at offset {start} has no end", start)


def read_records(path):
    """``(offset, record bytes)`` of every record of the file at ``path`` (see ``records``)."""
    with open(path, "rb") as stream:
        yield from records(stream, path)
