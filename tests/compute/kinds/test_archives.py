"""compute.archives: hostile zips give per-item errors or ArchiveError, never paths or surprises."""

from __future__ import annotations

import io
import zipfile

import pytest

from compute import archives
from compute.config import ComputeSettings
from tests.support.archives import bomb_zip, lying_zip, many_members_zip, zip_bytes


def settings(**env) -> ComputeSettings:
    return ComputeSettings(**env)


def opened(data: bytes, **env) -> tuple[zipfile.ZipFile, list[archives.Member]]:
    archive = archives.open_zip(io.BytesIO(data), settings(**env))
    return archive, archives.members(archive, settings(**env))


@pytest.mark.parametrize("name, why", [
    ("../x.txt", "traversal"), ("a/../../x.txt", "traversal"), ("a\\..\\x.txt", "traversal"),
    ("/etc/passwd", "absolute"), ("\\server\\share.txt", "absolute"), ("C:\\Windows\\x.txt", "absolute"),
    ("c:x.txt", "absolute"),
])
def test_unsafe_names_are_per_item_errors(name, why):
    archive, members = opened(zip_bytes({name: b"data", "fine/ok.txt": b"ok"}))
    assert [m.name for m in members] == [name, "fine/ok.txt"]
    assert why in members[0].error and members[1].error is None
    with pytest.raises(archives.MemberError, match=why):
        archives.read_member(archive, members[0])
    assert archives.read_member(archive, members[1]) == b"ok"
    assert ".." not in members[0].safe_name.split("/") and not members[0].safe_name.startswith("/")


def test_safe_names_are_sanitized_and_unique():
    _, members = opened(zip_bytes([("a b.txt", b""), ("a_b.txt", b""), ("über/.hidden", b""), ("x/", b""),
                                   ("__MACOSX/._a b.txt", b""), (".DS_Store", b""), ("-dash", b"")]))
    assert [m.safe_name for m in members] == ["a_b.txt", "a_b-1.txt", "ber/hidden", "dash"]
    assert [m.index for m in members] == [0, 1, 2, 3]


def test_size_and_ratio_caps_from_the_declared_facts():
    _, members = opened(zip_bytes({"big.txt": b"x" * 5000}, zipfile.ZIP_STORED), MAX_ARCHIVE_MEMBER_BYTES=4096)
    assert "MAX_ARCHIVE_MEMBER_BYTES (4,096)" in members[0].error
    _, members = opened(bomb_zip(20))
    assert "MAX_ARCHIVE_RATIO (200)" in members[0].error and "zip bomb" in members[0].error
    # small members may compress very well and are no bomb
    archive, members = opened(zip_bytes({"zeros.txt": bytes(100_000)}))
    assert members[0].error is None and len(archives.read_member(archive, members[0])) == 100_000


def test_reading_stops_at_the_cap_whatever_the_member_declared():
    archive, members = opened(zip_bytes({"m.txt": b"y" * 10_000}))
    assert members[0].error is None  # declared facts fine under the default caps ...
    small = settings(MAX_ARCHIVE_MEMBER_BYTES=4096)
    with pytest.raises(archives.MemberError, match="over MAX_ARCHIVE_MEMBER_BYTES"):
        list(archives.iter_member(archive, members[0], small))  # ... but the stream is measured


def test_a_member_that_lies_about_its_size_is_a_per_item_error():
    archive, members = opened(lying_zip(b"z" * 50_000, declared=10))
    assert members[0].size == 10 and members[0].error is None
    with pytest.raises(archives.MemberError, match="unreadable member"):
        archives.read_member(archive, members[0])


def test_corrupt_data_is_a_per_item_error():
    data = bytearray(zip_bytes({"a.txt": b"hello world " * 100}))
    data[40:60] = b"\xff" * 20  # inside a.txt's compressed bytes
    archive, members = opened(bytes(data))
    with pytest.raises(archives.MemberError, match="unreadable member"):
        archives.read_member(archive, members[0])


def test_member_count_cap_and_non_zips_are_archive_errors():
    with pytest.raises(archives.ArchiveError, match="1,001 members, over MAX_ARCHIVE_MEMBERS"):
        archives.open_zip(io.BytesIO(many_members_zip(1001)), settings(MAX_ARCHIVE_MEMBERS=1000))
    assert len(archives.open_zip(io.BytesIO(many_members_zip(1000)), settings(MAX_ARCHIVE_MEMBERS=1000))
               .infolist()) == 1000
    for data in (b"", b"just text", b"PK\x03\x04" + bytes(100)):
        with pytest.raises(archives.ArchiveError, match="not a"):
            archives.open_zip(io.BytesIO(data), settings())
    assert archives.is_zip(zip_bytes({})) and archives.is_zip(zip_bytes({"a": b""})) and not archives.is_zip(b"PK")


def test_encrypted_and_symlink_members_are_per_item_errors():
    raw = bytearray(zip_bytes({"secret.txt": b"s", "link": b"/etc/passwd"}, zipfile.ZIP_STORED))
    archive = zipfile.ZipFile(io.BytesIO(bytes(raw)))
    archive.infolist()[0].flag_bits |= 0x1
    archive.infolist()[1].external_attr = (0o120777 << 16)
    members = archives.members(archive, settings())
    assert members[0].error == "encrypted member" and members[1].error == "symbolic link, not a file"


@pytest.mark.parametrize("weights, groups", [
    ([10] * 10, 3), ([1000, 1, 1, 1, 1, 1, 1, 1], 4), ([0] * 7, 7), ([5], 8), ([3, 1, 4, 1, 5, 9, 2, 6], 20),
    ([100] * 100, 7),
])
def test_balanced_groups_tile_the_items(weights, groups):
    ranges = archives.balanced_groups(weights, groups)
    assert 1 <= len(ranges) <= min(groups, len(weights))
    assert [start for start, _ in ranges] == [0] + [end + 1 for _, end in ranges[:-1]]
    assert ranges[-1][1] == len(weights) - 1
    if len(set(weights)) == 1:  # equal weights: equal counts (within one)
        sizes = [end - start + 1 for start, end in ranges]
        assert len(ranges) == min(groups, len(weights)) and max(sizes) - min(sizes) <= 1
    assert archives.balanced_groups([], 3) == []
