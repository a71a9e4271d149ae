"""The comparison helper itself (no servers): unnamed differences fail, named ones pass only where
they apply, and a required named difference that does not occur fails too."""

import pytest

from support.compare import Allow, Answer, UnexplainedDifferences, compare
from support.semver import assert_versions, card_versions, is_descending, same_up_to_ties


def ans(body, status=200, is_json=True):
    return Answer(status, body, is_json)


def test_equal_answers_pass():
    assert compare("x", ans({"a": 1, "b": [1, 2]}), ans({"a": 1, "b": [1, 2]})) == []


def test_unnamed_value_difference_fails_with_a_readable_diff():
    with pytest.raises(UnexplainedDifferences) as err:
        compare("x", ans({"a": 1, "b": {"c": "ours"}}), ans({"a": 1, "b": {"c": "ref"}}))
    text = str(err.value)
    assert "body.b.c [value]" in text and '"ours"' in text and '"ref"' in text


def test_status_is_compared():
    with pytest.raises(UnexplainedDifferences, match=r"at status \[value\]"):
        compare("x", ans({"detail": "x"}, 422), ans({"detail": "x"}, 500))
    compare("x", ans({"detail": "x"}, 422), ans({"detail": "x"}, 500),
            Allow.status(422, 500, "422", "the client's fault"))


def test_text_body_against_json_body():
    with pytest.raises(UnexplainedDifferences, match="body_kind"):
        compare("x", ans({"detail": "x"}, 500), ans("Internal server error", 500, is_json=False))


def test_key_order_needs_its_allowance():
    ours, ref = ans({"a": 1, "b": 2}), ans({"b": 2, "a": 1})
    with pytest.raises(UnexplainedDifferences, match="key-order"):
        compare("x", ours, ref)
    assert compare("x", ours, ref, [Allow.key_order("unstable in the reference")]) == ["key order"]


def test_field_allowance_covers_only_its_key():
    uid = Allow.value_of("uid", "unique by nature")
    compare("x", ans({"uid": "1", "v": 1}), ans({"uid": "2", "v": 1}), [uid])
    with pytest.raises(UnexplainedDifferences, match=r"body.v \[value\]"):
        compare("x", ans({"uid": "1", "v": 1}), ans({"uid": "2", "v": 2}), [uid])


def test_path_allowance_checks_both_values():
    fix = Allow.path("body.version", "numbers", "1 means 1.x", ours="1.11.0", ref="10.1.0")
    compare("x", ans({"version": "1.11.0"}), ans({"version": "10.1.0"}), [fix])
    with pytest.raises(UnexplainedDifferences):
        compare("x", ans({"version": "1.12.0"}), ans({"version": "10.1.0"}), [fix])


def test_required_allowance_must_occur():
    fix = Allow.path("body.version", "numbers", "1 means 1.x", ours="1.11.0", ref="10.1.0")
    with pytest.raises(UnexplainedDifferences, match="did not occur"):
        compare("x", ans({"version": "1.0.0"}), ans({"version": "1.0.0"}), [fix])


def records(*versions):
    return [{"uid": f"u{v}", "name": "n", "version": v} for v in versions]


def test_card_lists_are_matched_by_uid():
    with pytest.raises(UnexplainedDifferences) as err:
        compare("x", ans({"cards": records("2.0.0", "1.0.0")}), ans({"cards": records("1.0.0", "2.0.0", "3.0.0")}))
    text = str(err.value)
    assert "missing-in-ours" in text and "n@3.0.0" in text and "[order]" in text


def test_order_only_allowance_does_not_hide_missing_records():
    order = Allow.path("body.cards", "sorted", "ours by semver", kinds=("order",),
                       ours=lambda c: is_descending([x["version"] for x in c]))
    compare("x", ans({"cards": records("2.0.0", "1.0.0")}), ans({"cards": records("1.0.0", "2.0.0")}), [order])
    with pytest.raises(UnexplainedDifferences, match="missing-in-ref"):
        compare("x", ans({"cards": records("3.0.0", "2.0.0", "1.0.0")}), ans({"cards": records("1.0.0", "2.0.0")}),
                [order])


def test_semver_helpers():
    assert is_descending(["10.0.0", "2.0.0", "2.0.0-rc.2", "2.0.0-rc.1", "1.10.0", "1.9.0"])
    assert not is_descending(["1.9.0", "1.10.0"])
    assert same_up_to_ties(["2.0.0", "2.0.0+build.1", "1.0.0"], ["2.0.0+build.1", "2.0.0", "1.0.0"])
    assert not same_up_to_ties(["2.0.0", "1.0.0"], ["1.0.0", "2.0.0"])
    assert card_versions(["1.0.0"])([{"version": "1.0.0"}])
    assert_versions(["1.0.0-rc.10", "1.0.0-rc.9", "1.0.0-alpha"], ["1.0.0-rc.10", "1.0.0-rc.9", "1.0.0-alpha"])
    with pytest.raises(AssertionError):
        assert_versions(["1.0.0"], ["1.0.1"])
