"""Specification of the one input reader every `tokenopt` command shares."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from langchain_tokenopt.cli.transcript import InputError, read_input, read_transcript


def test_reads_json_lists_request_bodies_and_jsonl() -> None:
    as_list = read_transcript('[{"role": "user", "content": "hi"}]')
    assert as_list.conversation == [HumanMessage("hi")]
    body = read_transcript(
        '{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "tools": []}'
    )
    assert body.kind == "conversation" and body.tools == 0
    jsonl = read_transcript(
        '{"role": "system", "content": "s"}\n{"role": "user", "content": "u"}\n'
    )
    assert jsonl.conversation == [SystemMessage("s"), HumanMessage("u")]


@pytest.mark.parametrize("text", ["plain prose", '{"not": "a message"}', "[1, 2, 3]", "[]", ""])
def test_what_is_not_a_transcript_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="<input>"):
        read_transcript(text)


def test_a_conversation_keeps_every_message_even_after_the_last_reply() -> None:
    transcript = read_transcript(
        '[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},'
        ' {"role": "user", "content": "c"}]'
    )
    assert len(transcript.calls) == 1
    assert [m.content for m in transcript.conversation] == ["a", "b", "c"]


def test_a_request_log_has_no_single_conversation() -> None:
    line = '{"messages": [{"role": "user", "content": "hi"}]}'
    transcript = read_transcript(f"{line}\n{line}\n")
    assert transcript.kind == "requests" and len(transcript.calls) == 2
    assert transcript.conversation == []


def test_read_input_reads_the_sample_and_names_a_missing_file() -> None:
    name, text = read_input(None, sample=True)
    assert name.startswith("<sample:") and text.lstrip().startswith("[")
    with pytest.raises(InputError, match=r"cannot read 'no/such/file\.json'"):
        read_input("no/such/file.json")
