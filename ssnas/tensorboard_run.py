"""A run as TensorBoard shows it: the folder it is named by, and its HParams session.

TensorBoard names a run by its folder's path below `--logdir`, so a run's event files go to
`runs/RUN_ID/tb/NAME-SHORTID/`: it reads as its name and id from `--logdir runs` and from
`--logdir runs/RUN_ID` alike.

The HParams session (the run's hyperparameters and how it ended) has a small event file of its own
beside the scalars. TensorBoard keeps the first summary it reads of a tag, so an end appended to the
scalars' file by an attempt that was killed would hide the end of the attempt that resumed it and
finished: each attempt writes the session file anew (the start) and appends its end (with the real
status) when it closes. The file's name sorts before the scalars' files (theirs begin with a timestamp)
so that a TensorBoard already open goes on to follow those.

No experiment config is written: TensorBoard takes one experiment config for a whole logdir (the first
it finds), which would leave out every metric that run does not log. Without one it lists the
hyperparameters of every session and every scalar tag each logs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

# (tensorboard ships no type hints)
from tensorboard.compat.proto.event_pb2 import Event  # type: ignore[import-untyped]
from tensorboard.compat.proto.summary_pb2 import Summary  # type: ignore[import-untyped]
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2  # type: ignore[import-untyped]
from tensorboard.summary.writer.record_writer import RecordWriter  # type: ignore[import-untyped]

from ssnas.writes import write_atomically

SESSION_FILE = "events.out.tfevents.0.hparams"
FILE_VERSION = "brain.Event:2"  # what TensorBoard's own writers put first in an event file
# How a run's end reads in the HParams dashboard. It has no status for a run stopped on request: a killed
# run ended without a result, as a failed one did (the registry tells them apart). A run whose worker was
# lost writes no end, and shows as unknown, as a running one does.
END_STATUS = {"finished": api_pb2.STATUS_SUCCESS, "failed": api_pb2.STATUS_FAILURE, "killed": api_pb2.STATUS_FAILURE}
NAME_LENGTH = 80  # of a run's name in its folder's name (the id follows it)
_UNSAFE = re.compile(r"[^\w.,=+\[\]-]+")  # a path separator, spaces, controls: what a folder name should not hold


def tensorboard_dir(run_dir: Path, name: str, run_id: str) -> Path:
    """The folder of a run's event files: `tb/NAME-SHORTID` (the name made safe for a folder)."""
    label = _UNSAFE.sub("_", name).strip("._")[:NAME_LENGTH]
    short = run_id[:8]
    return Path(run_dir) / "tb" / (f"{label}-{short}" if label else short)


def start_session(folder: Path, hparams: dict[str, Any]) -> None:
    """Write the session file anew with the hyperparameters and the start (an earlier attempt's end goes)."""
    start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
    for key, value in hparams.items():
        if isinstance(value, bool):
            start.hparams[key].bool_value = value
        elif isinstance(value, (int, float)):
            start.hparams[key].number_value = value
        else:
            start.hparams[key].string_value = str(value)
    events = [Event(wall_time=time.time(), file_version=FILE_VERSION),
              _event(metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start))]
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(folder / SESSION_FILE, lambda file: _write(file, events))


def end_session(folder: Path, status: str) -> None:
    """Append the session's end: how the run ended (`finished`, `failed` or `killed`), and when."""
    end = plugin_data_pb2.SessionEndInfo(status=END_STATUS[status], end_time_secs=time.time())
    with open(folder / SESSION_FILE, "ab") as file:
        _write(file, [_event(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=end))])


def _event(tag: str, data: plugin_data_pb2.HParamsPluginData) -> Event:
    value = Summary.Value(tag=tag, metadata=metadata.create_summary_metadata(data), tensor=metadata.NULL_TENSOR)
    return Event(wall_time=time.time(), summary=Summary(value=[value]))


def _write(file: BinaryIO, events: Iterable[Event]) -> None:
    records = RecordWriter(file)
    for event in events:
        records.write(event.SerializeToString())
