"""Moving run files between a node's scratch folder and the head (ssnas.cluster.files), without Ray."""

import pytest

from ssnas.cluster import files


def shipment_to(head, scratch):
    sent = []

    def send(name, data, offset):
        sent.append((name, len(data), offset))
        files.store(head, name, data, offset)
    return files.Shipment(scratch, send), sent


def test_growing_files_ship_their_new_bytes_and_others_ship_whole(tmp_path):
    head, scratch = tmp_path / "head", tmp_path / "scratch"
    (scratch / "tb").mkdir(parents=True)
    (scratch / "log.txt").write_text("one\n")
    (scratch / "tb" / "events.out").write_bytes(b"abc")
    (scratch / "checkpoint.pt").write_bytes(b"first")
    (scratch / "checkpoint.tmp").write_bytes(b"half-written")
    shipment, sent = shipment_to(head, scratch)
    shipment.ship()
    assert sorted(sent) == [("checkpoint.pt", 5, None), ("log.txt", 4, 0), ("tb/events.out", 3, 0)]
    sent.clear()
    with open(scratch / "log.txt", "a") as log:
        log.write("two\n")
    (scratch / "checkpoint.pt").write_bytes(b"second!")
    shipment.ship()
    shipment.ship()  # nothing changed since
    assert sorted(sent) == [("checkpoint.pt", 7, None), ("log.txt", 4, 4)]
    assert (head / "log.txt").read_text() == "one\ntwo\n" and (head / "checkpoint.pt").read_bytes() == b"second!"
    assert (head / "tb" / "events.out").read_bytes() == b"abc" and not (head / "checkpoint.tmp").exists()


def test_fetched_files_count_as_shipped_and_a_resumed_log_goes_on(tmp_path):
    head, scratch = tmp_path / "head", tmp_path / "scratch"
    files.store(head, "log.txt", b"first attempt\n", None)
    files.fetch(lambda name: files.read(head, name), files.RUN_INPUTS, scratch)
    assert sorted(p.name for p in scratch.iterdir()) == ["log.txt"]  # no checkpoint on the head: none fetched
    shipment, sent = shipment_to(head, scratch)
    shipment.mark_present()
    with open(scratch / "log.txt", "a") as log:
        log.write("second attempt\n")
    shipment.ship()
    assert sent == [("log.txt", 15, 14)]
    assert (head / "log.txt").read_text() == "first attempt\nsecond attempt\n"


@pytest.mark.parametrize("name", ["../registry.db", "/etc/passwd", "tb/../../x", ""])
def test_a_shipped_name_cannot_leave_the_run_folder(tmp_path, name):
    with pytest.raises(ValueError):
        files.store(tmp_path, name, b"x", None)


def test_the_file_names_are_the_stages_own():
    from ssnas.execution import GENOTYPE_FILE, PRETRAINED_FILE
    from ssnas.tracking import CHECKPOINT

    assert files.PARENT_OUTPUTS == (GENOTYPE_FILE, PRETRAINED_FILE) and files.RUN_INPUTS[0] == CHECKPOINT
