"""Which scans of a Redis Cluster one master can answer: `prefix_hash_tag` against Redis's
own slot function (redis-py's `key_slot`, the CRC16 rule of the cluster spec)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from langchain_tokenopt.stores._redis_cluster import prefix_hash_tag

# Braces often, so tags, empty tags and unclosed ones all come up.
TEXT = st.text(alphabet=st.sampled_from(["{", "}", "a", "b", ":", "é"]), max_size=12)


def slot(key: str) -> int:
    return int(key_slot(key.encode("utf-8")))


@given(prefix=TEXT, suffixes=st.lists(TEXT, min_size=1, max_size=5))
def test_every_key_under_a_tagged_prefix_is_in_the_slot_of_its_tag(
    prefix: str, suffixes: list[str]
) -> None:
    tag = prefix_hash_tag(prefix)
    if tag is None:
        return
    assert {slot(prefix + suffix) for suffix in suffixes} == {slot(tag)} == {slot(prefix)}


@given(prefix=TEXT)
def test_an_untagged_prefix_can_reach_other_slots(prefix: str) -> None:
    """None means some keys under the prefix hash elsewhere: all masters must be asked."""
    if prefix_hash_tag(prefix) is not None:
        return
    keys = [prefix + suffix for suffix in ("x", "y}", "{z}", "}q", "{w}", "0", "1", "2")]
    assert len({slot(key) for key in keys}) > 1


def test_the_tag_is_the_text_between_the_first_braces() -> None:
    assert prefix_hash_tag("budget:{alice}:") == "alice"
    assert prefix_hash_tag("a{b}{c}") == "b"
    assert prefix_hash_tag("a{{b}") == "{b"
    assert prefix_hash_tag("a}{b}") == "b"
    for untagged in ["", "budget:alice:", "budget:{alice", "budget:{}alice}", "a}b"]:
        assert prefix_hash_tag(untagged) is None
