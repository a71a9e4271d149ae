"""Field-by-field comparison of two HTTP answers (ours and the reference's) with NAMED allowed
differences.

    compare("cards/list v=1", ours, ref, allow=[DATE, Allow.path("body.cards", "version filter `1`",
            "1 means 1.x (reference: text prefix)", ours=versions([...]), ref=versions([...]))])

Every difference between the two answers (status, body kind, keys, values, list lengths, key
order) must be covered by one of the allowances passed, or the comparison fails with a readable
list of the unexplained differences. An allowance is a name, a one-line reason and a rule that
says which differences it covers; allowances marked ``required`` must cover at least one
difference (so a test that names a deliberate fix proves that the fix is exercised).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple, Union

Path = Tuple[Union[str, int], ...]
_MISSING = object()


@dataclass
class Answer:
    """One HTTP answer: status, and the body as JSON when it is JSON (else as text/bytes)."""

    status: int
    body: Any
    is_json: bool
    raw: bytes = b""
    content_type: str = ""

    @classmethod
    def of(cls, response: Any) -> "Answer":
        raw = response.content
        ctype = response.headers.get("content-type", "")
        try:
            return cls(response.status_code, json.loads(raw), True, raw, ctype)
        except ValueError:
            return cls(response.status_code, raw.decode("utf-8", "replace"), False, raw, ctype)

    def as_tree(self) -> dict:
        """The shape that is compared: {"status": .., "body": ..} (+ "body_kind" for non-JSON)."""
        return {"status": self.status, "body_kind": "json" if self.is_json else "text", "body": self.body}


@dataclass(frozen=True)
class Difference:
    path: Path
    # "value" | "type" | "missing-in-ours" | "missing-in-ref" | "length" | "order" | "key-order"
    kind: str
    ours: Any
    ref: Any

    def where(self) -> str:
        return path_str(self.path)

    def __str__(self) -> str:
        def show(v: Any) -> str:
            if v is _MISSING:
                return "<absent>"
            text = json.dumps(v, sort_keys=False, default=str)
            return text if len(text) <= 400 else text[:400] + "…"

        return f"  at {self.where()} [{self.kind}]\n      ours: {show(self.ours)}\n      ref:  {show(self.ref)}"


def path_str(path: Sequence[Union[str, int]]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<root>"


def diff(ours: Any, ref: Any, path: Path = (), by_uid: bool = True) -> List[Difference]:
    """All differences between two JSON values. Dicts: keys and values, then key order; lists of
    card records (dicts with distinct `uid`s): matched by uid (see _diff_records); other lists:
    element by element when the lengths agree, else one `length` difference for the whole list
    (also card lists when ``by_uid`` is false: for uids that each server generated)."""
    if isinstance(ours, dict) and isinstance(ref, dict):
        out: List[Difference] = []
        for key in ref:
            if key not in ours:
                out.append(Difference(path + (key,), "missing-in-ours", _MISSING, ref[key]))
        for key in ours:
            if key not in ref:
                out.append(Difference(path + (key,), "missing-in-ref", ours[key], _MISSING))
            else:
                out.extend(diff(ours[key], ref[key], path + (key,), by_uid))
        common = [k for k in ours if k in ref]
        if common != [k for k in ref if k in ours]:
            out.append(Difference(path, "key-order", list(ours), list(ref)))
        return out
    if isinstance(ours, list) and isinstance(ref, list):
        if by_uid and (ours or ref) and (not ours or _keyed(ours)) and (not ref or _keyed(ref)):
            return _diff_records(ours, ref, path)
        if len(ours) != len(ref):
            return [Difference(path, "length", ours, ref)]
        out = []
        for i, (o, r) in enumerate(zip(ours, ref)):
            out.extend(diff(o, r, path + (i,), by_uid))
        return out
    if type(ours) is not type(ref) and not (_is_number(ours) and _is_number(ref)):
        return [Difference(path, "type", ours, ref)]
    if ours != ref:
        return [Difference(path, "value", ours, ref)]
    return []


def _keyed(items: list) -> bool:
    """A list of card records: dicts that all carry a distinct `uid`."""
    if not items or not all(isinstance(x, dict) and "uid" in x for x in items):
        return False
    uids = [x["uid"] for x in items]
    return len(set(uids)) == len(uids)


def _label(record: dict) -> str:
    if "version" in record:
        return f"{record.get('name')}@{record['version']}"
    return str(record["uid"])


def _diff_records(ours: list, ref: list, path: Path) -> List[Difference]:
    """Card lists are matched by uid: records missing on one side, then the records' fields,
    then one `order` difference (shown as name@version) when the common records are in a
    different order."""
    out: List[Difference] = []
    by_uid_ours = {x["uid"]: x for x in ours}
    by_uid_ref = {x["uid"]: x for x in ref}
    for x in ref:
        if x["uid"] not in by_uid_ours:
            out.append(Difference(path + (f"uid={x['uid']}",), "missing-in-ours", _MISSING, _label(x)))
    for x in ours:
        if x["uid"] not in by_uid_ref:
            out.append(Difference(path + (f"uid={x['uid']}",), "missing-in-ref", _label(x), _MISSING))
        else:
            out.extend(diff(x, by_uid_ref[x["uid"]], path + (f"uid={x['uid']}",)))
    common_ours = [x for x in ours if x["uid"] in by_uid_ref]
    common_ref = [x for x in ref if x["uid"] in by_uid_ours]
    if [x["uid"] for x in common_ours] != [x["uid"] for x in common_ref]:
        out.append(Difference(path, "order", [_label(x) for x in ours], [_label(x) for x in ref]))
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def lookup(tree: Any, path: Path) -> Any:
    for p in path:
        try:
            tree = tree[p]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return tree


Predicate = Callable[[Any], bool]


@dataclass
class Allow:
    """A named allowed difference.

    * ``keys``: covers value differences whose last path element is one of these keys (any depth).
    * ``at``: covers every difference at or below this path (``"body.cards"``), provided the
      values found there satisfy ``ours`` and ``ref`` (predicates, or literal expected values).
      ``both(ours_value, ref_value)`` may check the two together.
    * ``kinds``: restricts the difference kinds covered (e.g. only ``order``).
    """

    name: str
    reason: str
    keys: Tuple[str, ...] = ()
    at: Optional[Path] = None
    ours: Any = None
    ref: Any = None
    both: Optional[Callable[[Any, Any], bool]] = None
    kinds: Tuple[str, ...] = ()
    required: bool = False
    used: int = field(default=0, compare=False)

    # --- constructors -------------------------------------------------------------------------
    @classmethod
    def value_of(cls, name: str, reason: str, *keys: str) -> "Allow":
        return cls(name=name, reason=reason, keys=keys or (name,), kinds=("value", "type"))

    @classmethod
    def key_order(cls, reason: str) -> "Allow":
        return cls(name="key order", reason=reason, kinds=("key-order",))

    @classmethod
    def path(cls, where: str, name: str, reason: str, ours: Any = None, ref: Any = None,
             both: Optional[Callable[[Any, Any], bool]] = None, kinds: Tuple[str, ...] = (),
             required: bool = True) -> "Allow":
        return cls(name=name, reason=reason, at=_parse_path(where), ours=ours, ref=ref, both=both,
                   kinds=kinds, required=required)

    @classmethod
    def status(cls, ours: int, ref: int, name: str, reason: str, ours_body: Any = None,
               ref_body: Any = None) -> List["Allow"]:
        """A different status (and therefore body) for one request: ours answers ``ours`` with
        ``ours_body`` (when given), the reference ``ref`` with ``ref_body`` (when given)."""
        return [
            cls(name=name, reason=reason, at=("status",), ours=ours, ref=ref, required=True),
            cls(name=name, reason=reason, at=("body_kind",)),
            cls(name=name, reason=reason, at=("body",), ours=ours_body, ref=ref_body),
        ]

    # --- matching -------------------------------------------------------------------------------
    def covers(self, d: Difference, ours_root: Any, ref_root: Any) -> bool:
        if self.kinds and d.kind not in self.kinds:
            return False
        if self.keys:
            if not d.path or d.path[-1] not in self.keys:
                return False
        if self.at is not None:
            if tuple(d.path[: len(self.at)]) != tuple(self.at):
                return False
            if not _check(self.ours, lookup(ours_root, self.at)):
                return False
            if not _check(self.ref, lookup(ref_root, self.at)):
                return False
            if self.both is not None:
                try:
                    if not self.both(lookup(ours_root, self.at), lookup(ref_root, self.at)):
                        return False
                except Exception:  # noqa: BLE001
                    return False
        return True

    def describe(self) -> str:
        return f"{self.name}: {self.reason}"


def _check(expected: Any, actual: Any) -> bool:
    if expected is None:
        return True
    if callable(expected):
        try:
            return bool(expected(actual))
        except Exception:  # noqa: BLE001 - a predicate that cannot apply does not cover
            return False
    return expected == actual


def _parse_path(where: str) -> Path:
    out: List[Union[str, int]] = []
    for part in where.split("."):
        out.append(int(part) if part.isdigit() else part)
    return tuple(out)


class UnexplainedDifferences(AssertionError):
    pass


def flatten_allows(allow: Iterable[Union[Allow, Iterable[Allow]]]) -> List[Allow]:
    out: List[Allow] = []
    for a in allow:
        if isinstance(a, Allow):
            out.append(a)
        else:
            out.extend(flatten_allows(a))
    return out


def compare(label: str, ours: Answer, ref: Answer, allow: Iterable[Union[Allow, Iterable[Allow]]] = (),
            by_uid: bool = True) -> List[str]:
    """Compares two answers; raises UnexplainedDifferences listing every difference that no
    allowance covers (and every required allowance that covered nothing). Returns the names of the
    allowances that were used. Card lists are matched by uid unless ``by_uid`` is false."""
    __tracebackhide__ = True  # pytest: show the message, not this function
    allows = flatten_allows(allow)
    for a in allows:
        a.used = 0
    o_tree, r_tree = ours.as_tree(), ref.as_tree()
    differences = diff(o_tree, r_tree, by_uid=by_uid)
    unexplained = []
    for d in differences:
        hit = [a for a in allows if a.covers(d, o_tree, r_tree)]
        if not hit:
            unexplained.append(d)
        for a in hit:
            a.used += 1
    unused_required = []
    seen = set()
    for a in allows:
        if a.required and a.name not in seen and not any(b.used for b in allows if b.name == a.name):
            unused_required.append(a)
            seen.add(a.name)
    if unexplained or unused_required:
        lines = [f"{label}: ours and the reference differ"]
        if unexplained:
            lines.append(f"{len(unexplained)} unexplained difference(s):")
            lines.extend(str(d) for d in unexplained)
        if unused_required:
            lines.append("named differences that did not occur (the fix or quirk is not exercised any more):")
            lines.extend(f"  - {a.describe()}" for a in unused_required)
        lines.append(f"ours: {_short(o_tree)}")
        lines.append(f"ref:  {_short(r_tree)}")
        if allows:
            lines.append("allowed here: " + "; ".join(sorted({a.name for a in allows})))
        raise UnexplainedDifferences("\n".join(lines))
    return sorted({a.name for a in allows if a.used})


def _short(tree: Any) -> str:
    text = json.dumps(tree, default=str)
    return text if len(text) <= 1500 else text[:1500] + "…"
