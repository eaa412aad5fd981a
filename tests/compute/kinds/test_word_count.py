"""word_count against collections.Counter over the whole text, counted in one piece."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from pydantic import ValidationError

from compute.kinds import InvalidParams
from compute.kinds.word_count import KIND, NotUtf8Text
from tests.compute.kinds.conftest import Job
from tests.support.archives import bomb_zip, image_bytes, many_members_zip, zip_bytes

TEXT = (
    "Héllo wörld, hello WORLD!\r\n"
    "École école ÉCOLE — straße STRASSE Straße\r\n"
    "ΣΊΣΥΦΟΣ σίσυφος; naïve café CAFÉ 123 snake_case_word\n"
    "\n"
    "日本語のテキスト and emoji 🎉 party🎉party\n"
    "Ünïcödé ü ü ü İstanbul ﬁnance\n"
) * 120 + "the last line has no newline"


def reference(text: str) -> Counter:
    return Counter(re.findall(r"\w+", text.casefold()))


def top(counts: Counter, k: int) -> list[list]:
    return [[word, count] for word, count in sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))[:k]]


@pytest.mark.parametrize("chunks", [1, 2, 3, 8, 64])
def test_a_text_file_counts_exactly_like_one_pass(store, upload, chunks):
    data = TEXT.encode()
    upload_id = upload(data, "book.txt")
    job = Job(KIND, store)
    inputs = job.split(chunks, upload_id=upload_id, top_k=15)
    # byte ranges that tile the file, each starting a line
    assert [i["start"] for i in inputs] == [0] + [i["end"] + 1 for i in inputs[:-1]]
    assert inputs[-1]["end"] == len(data) - 1 and len(inputs) == chunks
    assert all(data[i["start"] - 1:i["start"]] == b"\n" for i in inputs[1:])

    result, outputs = job.run(chunks, upload_id=upload_id, top_k=15)
    expected = reference(TEXT)
    assert result["total_words"] == sum(expected.values())
    assert result["distinct_words"] == len(expected)
    assert result["top"] == top(expected, 15)
    assert (result["files"], result["errors"]) == (1, [])
    assert sum(o["words"] for o in outputs) == result["total_words"]
    part = json.loads(job.artifact(outputs[0]["part"]))
    assert Counter(part) == reference(data[inputs[0]["start"]:inputs[0]["end"] + 1].decode())


def test_ties_are_ordered_by_word_and_top_k_bounds_the_list(store, upload):
    upload_id = upload(b"b a c b a c d\n")
    result, _ = Job(KIND, store).run(2, upload_id=upload_id, top_k=3)
    assert result["top"] == [["a", 2], ["b", 2], ["c", 2]]
    assert (result["total_words"], result["distinct_words"]) == (7, 4)


def test_characters_split_across_read_blocks_still_decode(store, upload, monkeypatch):
    monkeypatch.setattr("compute.kinds.word_count.READ_BLOCK", 7)  # cuts through multi-byte characters
    upload_id = upload(TEXT.encode())
    result, _ = Job(KIND, store).run(3, upload_id=upload_id, top_k=1000)
    assert result["top"] == top(reference(TEXT), 1000)


def test_one_long_line_and_an_empty_file(store, upload):
    line = "word " * 5000  # no newline at all: cannot be cut, one chunk
    result, outputs = Job(KIND, store, "long").run(8, upload_id=upload(line.encode()), top_k=5)
    assert len(outputs) == 1 and result["top"] == [["word", 5000]]
    result, outputs = Job(KIND, store, "empty").run(4, upload_id=upload(b""), top_k=5)
    assert result["total_words"] == 0 and result["top"] == [] and outputs[0]["start"] == 0


def test_a_bad_byte_after_the_head_fails_the_chunk_naming_its_offset(store, upload, monkeypatch):
    monkeypatch.setattr("compute.kinds.word_count.READ_BLOCK", 1000)
    data = ("fine text\n" * 2000).encode()
    data = data[:12345] + b"\xe9" + data[12346:]  # latin-1 é in the middle of the file
    upload_id = upload(data)
    job = Job(KIND, store)
    inputs = job.split(2, upload_id=upload_id)  # the head is fine: accepted
    job.chunk(0, inputs[0])
    with pytest.raises(NotUtf8Text, match=r"0xe9 at byte offset 12,345") as error:
        job.chunk(1, inputs[1])
    assert not isinstance(error.value, KIND.retry.transient)  # fails the job at once


@pytest.mark.parametrize("data, why", [
    (b"caf\xe9 au lait\n" * 10, "invalid byte 0xe9 at offset 3"),
    (image_bytes((8, 8)), "neither a zip archive nor UTF-8 text"),
    (b"text\x00with a NUL\n", "NUL bytes"),
    (b"PK\x03\x04" + b"\x00" * 200, "not a zip archive"),
])
def test_wrong_file_types_are_invalid_params(store, upload, data, why):
    with pytest.raises(InvalidParams, match=re.escape(why)) as error:
        Job(KIND, store).split(4, upload_id=upload(data))
    assert error.value.field == "upload_id"


FILES = {
    "README.txt": "Zip files: hello Hello HELLO\r\n",
    "docs/guide.txt": "Ünïcödé guide, guide; café\n" * 50,
    "docs/empty.txt": "",
    "more/notes.md": TEXT,
}


@pytest.mark.parametrize("chunks", [1, 2, 5])
def test_a_zip_of_text_files_with_bad_members(store, upload, chunks):
    members = [(name, text.encode()) for name, text in FILES.items()]
    members += [("docs/", b""), ("latin1.txt", "caf\xe9".encode("latin-1") * 3), ("../escape.txt", b"evil words"),
                ("/etc/passwd", b"root"), ("__MACOSX/._README.txt", b"\x00\x05\x16\x07")]
    upload_id = upload(zip_bytes(members), "texts.zip")
    job = Job(KIND, store)
    inputs = job.split(chunks, upload_id=upload_id)
    assert len(inputs) <= chunks  # groups balanced by size: the big member may take a group's share
    # groups tile the 7 files (the directory and the macOS litter are skipped)
    assert [i["start"] for i in inputs] == [0] + [i["end"] + 1 for i in inputs[:-1]] and inputs[-1]["end"] == 6
    result, _ = job.run(chunks, upload_id=upload_id, top_k=50)
    expected = reference("".join(FILES.values()))
    assert result["total_words"] == sum(expected.values()) and result["top"] == top(expected, 50)
    assert result["files"] == 4
    errors = {e["item"]: e["error"] for e in result["errors"]}
    assert set(errors) == {"latin1.txt", "../escape.txt", "/etc/passwd"}
    assert "not UTF-8" in errors["latin1.txt"] and "offset 3" in errors["latin1.txt"]
    assert "traversal" in errors["../escape.txt"] and "absolute" in errors["/etc/passwd"]


def test_a_zip_bomb_member_is_a_per_item_error(store, upload):
    upload_id = upload(bomb_zip(20, "bomb.txt", {"ok.txt": b"one two two\n"}))
    result, _ = Job(KIND, store).run(2, upload_id=upload_id)
    assert result["top"] == [["two", 2], ["one", 1]] and result["files"] == 1
    assert result["errors"][0]["item"] == "bomb.txt" and "MAX_ARCHIVE_RATIO" in result["errors"][0]["error"]


def test_a_zip_whose_every_member_fails_fails_the_job(store, upload):
    upload_id = upload(zip_bytes({"a.txt": b"\xff\xfe", "b.bin": b"\x80abc"}))
    job = Job(KIND, store)
    with pytest.raises(ValueError, match=r"no file in the zip could be read \(2 failed\); first: a.txt"):
        job.run(2, upload_id=upload_id)


def test_too_many_members_or_no_files_are_invalid_params(store, upload, caps):
    caps(MAX_ARCHIVE_MEMBERS=10)
    with pytest.raises(InvalidParams, match="11 members, over MAX_ARCHIVE_MEMBERS"):
        Job(KIND, store).split(2, upload_id=upload(many_members_zip(11)))
    assert len(Job(KIND, store).split(20, upload_id=upload(many_members_zip(10)))) == 10
    with pytest.raises(InvalidParams, match="no files"):
        Job(KIND, store).split(2, upload_id=upload(zip_bytes({"folder/": b""})))


@pytest.mark.parametrize("bad", [{"top_k": 0}, {"top_k": 1001}, {"top_k": "5"}, {"upload_id": "../../x"},
                                 {"extra": 1}])
def test_params_are_checked(bad):
    with pytest.raises(ValidationError):
        KIND.Params.model_validate({"upload_id": "0" * 32} | bad)

