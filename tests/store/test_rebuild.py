"""Merge chains that a rebuild follows: the survivor each merged anchor's postings move to."""

import pytest

from store.rebuild import MergeCycleError, resolve_merges


def test_no_links_resolve_to_nothing() -> None:
    assert resolve_merges({}) == {}


def test_link_resolves_to_survivor() -> None:
    assert resolve_merges({"a": "b"}) == {"a": "b"}


def test_two_anchors_into_one() -> None:
    assert resolve_merges({"a": "c", "b": "c"}) == {"a": "c", "b": "c"}


def test_chain_resolves_to_last_anchor() -> None:
    assert resolve_merges({"a": "b", "b": "c"}) == {"a": "c", "b": "c"}


def test_long_chain_in_any_order() -> None:
    links = {"d": "e", "a": "b", "c": "d", "b": "c"}

    assert resolve_merges(links) == dict.fromkeys(["a", "b", "c", "d"], "e")


def test_cycle_raises_with_its_members() -> None:
    with pytest.raises(MergeCycleError, match="a -> b -> c -> a"):
        resolve_merges({"a": "b", "b": "c", "c": "a"})


def test_chain_into_cycle_names_cycle() -> None:
    with pytest.raises(MergeCycleError, match=r"cycle: b -> c -> b\."):
        resolve_merges({"a": "b", "b": "c", "c": "b"})


def test_self_link_is_cycle() -> None:
    with pytest.raises(MergeCycleError, match="a -> a"):
        resolve_merges({"a": "a"})


def test_cycle_error_is_value_error() -> None:
    with pytest.raises(ValueError, match="merged_into"):
        resolve_merges({"a": "b", "b": "a"})
