"""A rosbag2 writer whose MCAP storage writes large messages straight to the file.

rosbags' MCAP storage assembles every message in memory buffers (the message record,
then the chunk, then the chunk record) before the file sees it: five copies of each
byte. For the node's outputs, 12 MB per VGA frame, that took 25-38 ms a frame on a
2-core machine whose cores are the inference's, enough to cost the tool 5 % of its
frames per second. Here a message above ``DIRECT_BYTES`` becomes a chunk of its own
whose few header bytes are packed and whose payload goes to the file as it is, given as
one buffer or as pieces (``bag_messages``): one copy, into the file. Smaller messages,
and everything else (schemas, channels, summary, metadata), stay with rosbags; the
other storages get pieces joined. The file is standard MCAP: one more chunk per large
message, each with its message index and an entry in the summary's chunk index.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path
import struct
from typing import Any

from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.enums import CompressionMode
from rosbags.rosbag2.storage_mcap import McapWriter

from depth_anything_ros.cli.bag_messages import joined, Serialized

DIRECT_BYTES = 1 << 16
_OP_MESSAGE, _OP_CHUNK, _OP_MESSAGE_INDEX = 0x05, 0x06, 0x07
_MESSAGE_HEAD = struct.Struct("<BQHIQQ")            # op, length, channel, sequence, times
_CHUNK_HEAD = struct.Struct("<BQQQQIIQ")            # op, length, start, end, size, crc, "", n
_INDEX = struct.Struct("<BQHIQQ")                   # op, length, channel, n, time, offset
_CHUNK_INDEX = struct.Struct("<QQQQIHQQIQQ")


class _DirectMcapWriter(McapWriter):
    """rosbags' MCAP storage, but large messages are written without buffering."""

    def __init__(self, path: Path, compression: CompressionMode) -> None:
        super().__init__(path, compression)
        self._direct = not self.compression   # a compressed chunk needs its bytes in memory

    def write(self, connection: Any, timestamp: int, data: Serialized) -> None:
        pieces = data if isinstance(data, tuple) else (data,)
        size = sum(len(piece) for piece in pieces)
        if not self._direct or size < DIRECT_BYTES:
            super().write(connection, timestamp, joined(data))
            return
        if self.chunk.bio.tell():
            self.close_chunk()    # keeps the file's records in the order they were given
        self.message_start_time = min(timestamp, self.message_start_time)
        self.message_end_time = max(timestamp, self.message_end_time)
        self.channel_stats[connection.id] += 1
        message = _MESSAGE_HEAD.size + size             # the chunk's records: this message
        bio = self.bio
        chunk_start = bio.tell()
        bio.write(_CHUNK_HEAD.pack(_OP_CHUNK, 8 * 3 + 4 + 4 + 8 + message, timestamp,
                                   timestamp, message, 0, 0, message))
        bio.write(_MESSAGE_HEAD.pack(_OP_MESSAGE, 2 + 4 + 8 + 8 + size, connection.id, 0,
                                     timestamp, timestamp))
        for piece in pieces:
            bio.write(piece)
        chunk_end = bio.tell()
        bio.write(_INDEX.pack(_OP_MESSAGE_INDEX, 2 + 4 + 16, connection.id, 16, timestamp, 0))
        # The chunk index record's body, kept for the summary as close_chunk keeps it (a
        # stream positioned at its end): times, offset, length, a one-entry message index
        # map, index length, compression "" and the (un)compressed sizes.
        index = BytesIO()
        index.write(_CHUNK_INDEX.pack(
            timestamp, timestamp, chunk_start, chunk_end - chunk_start, 10, connection.id,
            chunk_end, bio.tell() - chunk_end, 0, message, message))
        self.chunks.append(index)


class BagWriter(Writer):
    """rosbags' rosbag2 Writer with the direct MCAP storage; ``write`` takes pieces too."""

    STORAGE_PLUGINS = {**Writer.STORAGE_PLUGINS, StoragePlugin.MCAP: _DirectMcapWriter}

    def write(self, connection: Any, timestamp: int, data: Serialized) -> None:
        direct = isinstance(self.storage, _DirectMcapWriter)
        super().write(connection, timestamp, data if direct else joined(data))
