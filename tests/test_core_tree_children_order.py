"""Children come back in the order ZooKeeper's `HashSet<String>(8)` iterates them.

The expected orders were produced once by Java 17 (`new HashSet<String>(8)`, the same add/remove
script, `String.join("/", set)`); the long ones are kept as SHA-256 digests."""

from __future__ import annotations

import hashlib
import itertools
import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from zkref.core.datatree import Znode, java_hash


def run(script: list[str]) -> list[str]:
    z = Znode(b"", (), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    out = []
    for line in script:
        if line.startswith("+"):
            z.add_child(line[1:])
        elif line.startswith("-"):
            z.children.pop(line[1:], None)
        else:
            out.append("/".join(z.children_in_order()))
    return out


def digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def test_java_string_hash() -> None:
    # String.hashCode: "Aa" and "BB" collide; spread = h ^ (h >>> 16)
    assert java_hash("Aa") == java_hash("BB") == 2112
    assert java_hash("") == 0
    h = 0
    for c in "hello":
        h = (31 * h + ord(c)) & 0xFFFFFFFF
    assert java_hash("hello") == h ^ (h >> 16)
    # a non-BMP character hashes as its surrogate pair
    assert java_hash("\U0001f600") == java_hash("\ud83d\ude00")


def test_sequential_lock_names() -> None:
    script = (
        [f"+lock-{i:010d}" for i in range(40)]
        + ["?"]
        + [f"-lock-{i:010d}" for i in range(0, 40, 3)]
        + ["?"]
        + [f"+lock-{i:010d}" for i in range(40, 45)]
        + ["?"]
    )
    out = run(script)
    assert [len(x.split("/")) for x in out] == [40, 26, 31]
    assert digest(out) == "a00b9a626c42a86ea439fdd27a2163d8846fc7b3e371358b4185ca6eacde80d4"


def test_random_names_with_removals() -> None:
    r = random.Random(7)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789_-."
    names = ["".join(r.choice(alphabet) for _ in range(r.randint(1, 12))) for _ in range(300)]
    script: list[str] = []
    live: list[str] = []
    for i, n in enumerate(names):
        script.append("+" + n)
        live.append(n)
        if i % 7 == 3 and live:
            v = r.choice(live)
            live.remove(v)
            script.append("-" + v)
        if i in (5, 11, 30, 100, 299):
            script.append("?")
    assert digest(run(script)) == (
        "3927704e48090e8370c7199e33be5547b1733fb921c2c0a0a6873fed92951969"
    )


def test_colliding_names_resize_instead_of_treeify() -> None:
    coll = ["".join(p) for p in itertools.product(["Aa", "BB"], repeat=4)][:9]
    out = run(["+x", "+y"] + ["+" + c for c in coll] + ["?"])
    assert out == [
        "AaAaAaAa/AaAaAaBB/AaAaBBAa/AaAaBBBB/AaBBAaAa/AaBBAaBB/AaBBBBAa/AaBBBBBB/BBAaAaAa/x/y"
    ]


def test_unicode_and_reinsertion() -> None:
    out = run(["+é", "+ü", "+日本", "+a", "+\u00a0x", "?", "-é", "+é", "?"])
    assert out == ["\u00a0x/é/a/日本/ü", "\u00a0x/a/é/日本/ü"]


def test_system_nodes_order() -> None:
    from zkref.core.datatree import DataTree

    zk = DataTree().get("/zookeeper")
    assert zk is not None and zk.children_in_order() == ["config", "quota"]  # zkCli: ls /zookeeper


def test_session_ephemerals_set_and_its_clone() -> None:
    """DataTree's per-session `new HashSet<String>()` and the clone getEphemerals/closeSession
    iterate: after the set grew to 60 and shrank to 10, the clone (sized for 10) orders
    differently from the original."""
    from zkref.core.datatree import JavaHashSet

    r = random.Random(11)
    paths = [f"/app/{r.choice(['locks', 'workers', 'leader'])}/n-{i:010d}" for i in range(60)]
    script = [*("+" + p for p in paths), "?", "c", *("-" + p for p in paths[:50])]
    script += ["?", "c", "C", "+/late/1", "+/late/2", "?"]
    js = JavaHashSet()
    out: list[str] = []
    for line in script:
        if line.startswith("+"):
            js.add(line[1:])
        elif line.startswith("-"):
            js.discard(line[1:])
        elif line == "c":
            out.append("|".join(js.java_clone().java_order()))
        elif line == "C":
            js = js.java_clone()
        else:
            out.append("|".join(js.java_order()))
    assert out[2] != out[3]  # the shrunk set and its clone differ
    assert digest(out) == "432ce29a2e5abc317ee3c310f81b1eb8a5268627c5631234fc7f27b7d25bd825"


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=30))
def test_java_hash_matches_utf16_definition(name: str) -> None:
    units = name.encode("utf-16-be", "surrogatepass")
    h = 0
    for (u,) in struct.iter_unpack(">H", units):
        h = (31 * h + u) & 0xFFFFFFFF
    assert java_hash(name) == h ^ (h >> 16)
