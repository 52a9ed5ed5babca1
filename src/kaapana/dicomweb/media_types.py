"""Media types in ``Content-Type`` and ``Accept`` headers, parsed to RFC 9110's grammar.

Why not :mod:`email`: ``email.headerregistry`` rejects ``transfer-syntax=*`` (a valid token, with
which a DICOMweb client accepts any transfer syntax), and ``email.message.Message.get_params``
accepts malformed values without complaint and hands back re-quoted values that can no longer be
checked. One tolerance: an unquoted value may contain ``/``, because clients send
``type=application/dicom`` unquoted.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from kaapana.errors import InvalidInput

_TCHARS = r"!#$%&'*+\-.^_`|~0-9A-Za-z"
_TOKEN = rf"[{_TCHARS}]+"
_QUOTED_STRING = r'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_MEDIA_RANGE = re.compile(rf"[ \t]*({_TOKEN})/({_TOKEN})")
_PARAMETER = re.compile(
    rf"[ \t]*;[ \t]*(?:({_TOKEN})[ \t]*=[ \t]*([{_TCHARS}/]+|{_QUOTED_STRING}))?"
)
_OWS = re.compile(r"[ \t]*")
_TOKEN_ONLY = re.compile(_TOKEN)
_QUOTED_PAIR = re.compile(r"\\(.)")
_QUOTABLE = re.compile(r"[\t \x21-\x7e\x80-\xff]*")
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


@dataclass(frozen=True)
class MediaType:
    """A parsed ``Content-Type`` value; ``str()`` renders it back in canonical form."""

    type: str
    params: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def __str__(self) -> str:
        return self.type + "".join(
            f"; {name}={quote(value)}" for name, value in self.params.items()
        )


@dataclass(frozen=True)
class AcceptedType:
    """One media range of an ``Accept`` header; ``q == 0`` means the client refuses it."""

    type: str
    params: Mapping[str, str] = field(default_factory=dict, hash=False)
    q: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def matches(self, media_type: str) -> bool:
        """Whether this range's type and subtype, wildcards included, cover ``media_type``.

        Parameters are left to the caller: what ``type`` or ``transfer-syntax`` mean, and which
        defaults apply when they are absent, depends on the resource (PS3.18 §8.7).
        """
        if self.type == "*/*":
            return True
        wanted = media_type.lower()
        if self.type.endswith("/*"):
            return wanted.startswith(self.type[:-1])
        return wanted == self.type


def parse_media_type(header: str) -> MediaType:
    """Parse a ``Content-Type`` value, refusing anything RFC 9110 would not accept."""
    media_type, pos = _parse_media_range(header, 0, "Content-Type")
    if pos != len(header):
        raise _malformed("Content-Type", header, pos, "unexpected text")
    return media_type


def parse_accept(header: str) -> list[AcceptedType]:
    """Parse an ``Accept`` value into its media ranges, most preferred first.

    Order is by q-value, then by position in the header. An empty header gives an empty list;
    what that means (RFC 9110: "any type" when the header is absent) is the caller's to decide.
    """
    accepted: list[AcceptedType] = []
    pos = 0
    while True:
        pos = _skip_ows(header, pos)
        if pos == len(header):
            break
        if header[pos] == ",":
            pos += 1  # empty list elements are allowed (RFC 9110 §5.6.1)
            continue
        start = pos
        media_type, pos = _parse_media_range(header, pos, "Accept")
        if pos < len(header) and header[pos] != ",":
            raise _malformed("Accept", header, pos, "expected ',' or end")
        if media_type.type.startswith("*/") and media_type.type != "*/*":
            raise _malformed("Accept", header, start, f"invalid media range {media_type.type!r}")
        params = dict(media_type.params)
        q = params.pop("q", "1")
        if not _QVALUE.fullmatch(q):
            raise InvalidInput(
                f"malformed Accept {header!r}: q-value {q!r} of {media_type.type} "
                "is not a number from 0 to 1 with at most three decimals"
            )
        accepted.append(AcceptedType(media_type.type, params, float(q)))
    accepted.sort(key=lambda item: -item.q)
    return accepted


def _parse_media_range(header: str, pos: int, what: str) -> tuple[MediaType, int]:
    match = _MEDIA_RANGE.match(header, pos)
    if match is None:
        problem = "empty value" if not header.strip() else "expected type/subtype"
        raise _malformed(what, header, pos, problem)
    media_type = f"{match[1]}/{match[2]}".lower()
    pos = match.end()
    params: dict[str, str] = {}
    while (match := _PARAMETER.match(header, pos)) is not None:
        pos = match.end()
        if match[1] is None:
            continue  # "a/b;;c=d" has an empty parameter, which RFC 9110 allows
        name, value = match[1].lower(), match[2]
        if value.startswith('"'):
            value = _QUOTED_PAIR.sub(r"\1", value[1:-1])
        if name in params:
            raise _malformed(what, header, match.start(1), f"parameter {name!r} given twice")
        params[name] = value
    return MediaType(media_type, params), _skip_ows(header, pos)


def _skip_ows(text: str, pos: int) -> int:
    return _OWS.match(text, pos).end()  # type: ignore[union-attr]


def _malformed(what: str, header: str, pos: int, problem: str) -> InvalidInput:
    return InvalidInput(f"malformed {what} {header!r}: {problem} at character {pos}")


def quote(value: str) -> str:
    if _TOKEN_ONLY.fullmatch(value):
        return value
    if not _QUOTABLE.fullmatch(value):
        raise ValueError(f"parameter value {value!r} cannot be put in a header")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


__all__ = ["AcceptedType", "MediaType", "parse_accept", "parse_media_type", "quote"]
