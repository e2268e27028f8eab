"""XPath over the PS3.19 Native DICOM Model, as the metadata operation applies it (PS3.18 2017b
§6.4.3.2: "apply each of the wado:XPath elements ... provide the XPath response").

Rules (the conformance statement repeats them):

* **"/"** — "all of the metadata" (PS3.18 §6.4.3.1 note) — is the whole model, serialized; lxml
  cannot return the document node (``xpath("/")`` answers ``[]``), so it is answered from the text.
* **Namespace.** The model is in the PS3.19 namespace (A.1.6 ``default namespace``), but XPath 1.0
  has no default namespace, and the PS3.19 A.1.7 example and every XPath seen in the wild are
  written without a prefix (``/NativeDicomModel/DicomAttribute[@keyword="..."]``).  An expression
  is therefore evaluated on a copy of the model *without* namespace, unless it uses a prefix that
  the request binds to the PS3.19 namespace (in-scope ``xmlns:p`` declarations of the
  ``wado:XPath`` element), in which case it runs on the model as it is.  Element results of the
  namespace-free copy are written back *with* the PS3.19 default namespace, so every element in a
  response is in the model's namespace whichever way it was selected.
* **Results.** A node-set is the concatenation of its nodes: elements serialized as XML, attribute
  and text nodes as their string value; a string as is; a number as XPath's ``string()`` writes it
  (``1``, ``0.5``, ``NaN``, ``Infinity``); a boolean as ``true``/``false``.  No match is ``""``.
* **Refused** (:class:`XPathRejected`, answered with ``urn:dicom:wado:0012``): syntax errors,
  unknown functions or variables, unbound prefixes, EXSLT extensions (off), and expressions that
  could be expensive: longer than :data:`MAX_EXPRESSION_LENGTH` characters, with more than
  :data:`MAX_DEEP_STEPS` steps on the descendant/ancestor/following/preceding axes (``//``
  included), with any such step inside a predicate (``//*[count(//*)...]`` costs the square of
  the model size), or with an absolute path inside a predicate (``//*[string(/) ...]`` reads the
  whole model once per node).  libxml2's XPath cannot be interrupted, so cost is bounded before
  evaluation.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Mapping
from typing import Final

from lxml import etree

from xdsi import ns

__all__ = [
    "MAX_DEEP_STEPS",
    "MAX_EXPRESSION_LENGTH",
    "CompiledXPath",
    "NativeModel",
    "XPathRejected",
]

MAX_EXPRESSION_LENGTH: Final = 1024
MAX_DEEP_STEPS: Final = 3

_NS_OPEN: Final = f'<NativeDicomModel xmlns="{ns.NATIVE_DICOM}"'.encode()
_FREE_OPEN: Final = b"<NativeDicomModel"
_DEEP_STEP: Final = re.compile(
    r"//|\b(?:descendant|ancestor|following|preceding)(?:-or-self|-sibling)?\s*::"
)
_PREFIX: Final = re.compile(r"(?<![\w.\-@$])([A-Za-z_][\w.\-]*)\s*:(?!:)")
_LITERAL: Final = re.compile(r"\"[^\"]*\"|'[^']*'")
_COST_TOKEN: Final = re.compile(r"[\[\]]|" + _DEEP_STEP.pattern + r"|/")
_OPERATOR_END: Final = re.compile(r"(?:^|[\s)\]])(?:and|or|div|mod)$")
_START_TAG: Final = re.compile(r"<([A-Za-z_][\w.\-]*)")


class XPathRejected(ValueError):
    """The expression is not valid XPath 1.0 here, or is refused as too expensive."""


_LOCAL = threading.local()


def _parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_LOCAL, "parser", None)
    if parser is None:
        # huge_tree: deeply nested sequences (the writer emits up to any depth); nothing in the
        # text is external, still no entities and no network.
        parser = etree.XMLParser(huge_tree=True, resolve_entities=False, no_network=True)
        _LOCAL.parser = parser
    return parser


class NativeModel:
    """One instance's model: the serialized text (UTF-8, no XML declaration, as the writer and
    the cache keep it), parsed on first use into the tree an expression needs."""

    __slots__ = ("_trees", "text")

    def __init__(self, text: bytes) -> None:
        self.text = text
        self._trees: dict[bool, etree._Element] = {}

    def whole(self) -> str:
        """The whole model ("/")."""
        return self.text.decode("utf-8")

    def tree(self, namespaced: bool) -> etree._Element:
        """The root of the model, in the PS3.19 namespace or in none.

        Raises
        ------
        XPathRejected
            Never; :class:`ValueError` if the text cannot be parsed (deeper than libxml2 builds).
        """
        root = self._trees.get(namespaced)
        if root is None:
            text = self.text if namespaced else self.text.replace(_NS_OPEN, _FREE_OPEN, 1)
            try:
                root = etree.fromstring(text, _parser())
            except etree.XMLSyntaxError as exc:
                raise ValueError(f"the model cannot be parsed for XPath: {exc}") from exc
            self._trees[namespaced] = root
        return root


class CompiledXPath:
    """One ``wado:XPath`` expression, checked and compiled once for every document it applies to.

    Parameters
    ----------
    text:
        The expression (surrounding white space is ignored).
    namespaces:
        Prefix → namespace bindings in scope of the ``wado:XPath`` element.

    Raises
    ------
    XPathRejected
        Syntax errors and the cost limits of the module docstring.
    """

    def __init__(self, text: str, namespaces: Mapping[str, str] | None = None) -> None:
        self.text = text.strip()
        if not self.text:
            raise XPathRejected("the XPath expression is empty")
        if len(self.text) > MAX_EXPRESSION_LENGTH:
            raise XPathRejected(
                f"the XPath expression is longer than {MAX_EXPRESSION_LENGTH} characters"
            )
        self.whole = self.text == "/"
        bindings = {p: u for p, u in (namespaces or {}).items() if p}
        used = set(_PREFIX.findall(_LITERAL.sub('""', self.text)))
        self.namespaced = any(bindings.get(p) == ns.NATIVE_DICOM for p in used)
        self._xpath: etree.XPath | None = None
        if self.whole:
            return
        _check_cost(self.text)
        try:
            self._xpath = etree.XPath(
                self.text, namespaces=bindings, regexp=False, smart_strings=False
            )
        except etree.XPathError as exc:
            raise XPathRejected(f"invalid XPath {self.text!r}: {exc}") from None

    def evaluate(self, model: NativeModel) -> str:
        """The expression's result on ``model`` as XPathResponse text (module docstring).

        Raises
        ------
        XPathRejected
            Errors libxml2 reports only when evaluating (unknown function, unbound prefix).
        ValueError
            The model cannot be parsed (see :meth:`NativeModel.tree`).
        """
        if self._xpath is None:
            return model.whole()
        root = model.tree(self.namespaced)
        try:
            result = self._xpath(root)
        except etree.XPathError as exc:
            raise XPathRejected(f"invalid XPath {self.text!r}: {exc}") from None
        return _text(result, free=not self.namespaced)


def _check_cost(text: str) -> None:
    """Refuse what could cost more than linear time in the model size (module docstring)."""
    plain = _LITERAL.sub('""', text)
    deep = 0
    depth = 0
    for match in _COST_TOKEN.finditer(plain):
        piece = match.group(0)
        where = f"at character {match.start() + 1}"
        if piece == "[":
            depth += 1
        elif piece == "]":
            depth = max(depth - 1, 0)
        elif piece == "/":
            if depth and _starts_path(plain, match.start()):
                raise XPathRejected(
                    f"XPath refused: an absolute path inside a predicate ({where}) is evaluated "
                    "once per candidate node; use a relative path"
                )
        elif depth:
            raise XPathRejected(
                f"XPath refused: a descendant/ancestor/following/preceding step inside a "
                f"predicate ({where}) is too expensive to evaluate"
            )
        else:
            deep += 1
    if deep > MAX_DEEP_STEPS:
        raise XPathRejected(
            f"XPath refused: more than {MAX_DEEP_STEPS} descendant/ancestor/following/preceding "
            "steps"
        )


def _starts_path(text: str, index: int) -> bool:
    """Whether the ``/`` at ``index`` begins an absolute location path (XPath 1.0 §2): nothing
    before it in its expression but an opening bracket, a comma or an operator."""
    before = text[:index].rstrip()
    return not before or before[-1] in "[(,=<>!|+-" or _OPERATOR_END.search(before) is not None


def _number(value: float) -> str:
    """XPath 1.0 §4.2 ``string()`` of a number."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == int(value):
        return str(int(value))
    return repr(value)


def _text(result: object, *, free: bool) -> str:
    if isinstance(result, bool):
        return "true" if result else "false"
    if isinstance(result, float | int):
        return _number(float(result))
    if isinstance(result, str | bytes):
        return result.decode("utf-8") if isinstance(result, bytes) else result
    if isinstance(result, list):
        parts: list[str] = []
        for node in result:
            if isinstance(node, etree._Element):
                if not isinstance(node.tag, str):
                    continue  # comments and PIs: none in the model
                text = etree.tostring(node, encoding="unicode", with_tail=False)
                if free:
                    text = _START_TAG.sub(rf'<\1 xmlns="{ns.NATIVE_DICOM}"', text, count=1)
                parts.append(text)
            else:
                parts.append(str(node))
        return "".join(parts)
    return str(result)
